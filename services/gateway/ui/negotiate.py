"""Content negotiation: the same path serves JSON to API clients and a page to browsers.

`/`, `/runs`, `/recipes`, `/effects`, `/media` and `/storage` are JSON routes too (for
curl, httpx and the CLI; most were before the web UI existed). A GET that prefers text/html —
a browser, or HTMX navigating — is routed to the page under `/ui` instead. `GET /cache/{cid}`
answers its preview page itself when `prefers_html`.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

PAGE_PREFIX = "/ui"
NEGOTIATED = {
    "/": "/ui/home",
    "/runs": "/ui/runs",
    "/recipes": "/ui/recipes",
    "/effects": "/ui/effects",
    "/media": "/ui/media",
    "/storage": "/ui/storage",
}


def prefers_html(accept: str | None) -> bool:
    """Whether an Accept header ranks text/html above JSON (browsers do; API clients and curl do not)."""
    if not accept:
        return False
    best: dict[str, tuple[float, int]] = {}
    for position, part in enumerate(accept.split(",")):
        kind, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        best[kind.lower()] = max(best.get(kind.lower(), (0.0, 0)), (q, -position))
    html_rank = max(best.get("text/html", (0.0, 0)), best.get("application/xhtml+xml", (0.0, 0)))
    json_rank = max(best.get("application/json", (0.0, 0)), best.get("*/*", (0.0, 0)))
    return html_rank[0] > 0 and html_rank > json_rank


def wants_html(headers: dict[str, str]) -> bool:
    """HTMX requests (header HX-Request) and browsers (Accept ranks text/html first) get pages."""
    return headers.get("hx-request") == "true" or prefers_html(headers.get("accept"))


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


class NegotiationMiddleware:
    """Rewrites GETs of the shared paths to their page when the client wants HTML; adds `Vary: Accept`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD") or scope["path"] not in NEGOTIATED:
            await self.app(scope, receive, send)
            return
        if wants_html(_headers(scope)):
            page = NEGOTIATED[scope["path"]]
            scope = {**scope, "path": page, "raw_path": page.encode()}

        async def send_with_vary(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))  # type: ignore[call-overload]
                headers.append((b"vary", b"Accept, HX-Request"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_vary)  # type: ignore[arg-type]
