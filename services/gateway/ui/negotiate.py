"""Content negotiation: the same path serves JSON to API clients and a page to browsers.

`/`, `/runs`, `/recipes`, `/media` and `/storage` were JSON routes before the web UI
existed (and still are for curl, httpx and the CLI). A GET that prefers text/html —
a browser, or HTMX navigating — is routed to the page under `/ui` instead.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from services.gateway.api_cache import prefers_html

PAGE_PREFIX = "/ui"
NEGOTIATED = {
    "/": "/ui/home",
    "/runs": "/ui/runs",
    "/recipes": "/ui/recipes",
    "/media": "/ui/media",
    "/storage": "/ui/storage",
}


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
