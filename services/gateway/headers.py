"""Security headers on every response: a Content-Security-Policy with no inline script, no framing,
no MIME sniffing, no referrer across sites.

Pages get a policy for the web UI (its scripts are files under /static; inline `style=` attributes
are allowed, inline `<script>` and `on*=` handlers are not). Content that users uploaded is served
under a sandboxing policy: an SVG or HTML file opened from /cache/{cid}/raw runs no script. A route
that sets its own policy (the content preview page, /docs) keeps it.
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
CONTENT_POLICY = (
    "default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'; sandbox; "
    "frame-ancestors 'none'"
)
# Where users' bytes are served as they are.
CONTENT_PATH = re.compile(r"^/(?:cache|ipfs)/[^/]+/(?:raw|mp4|thumbnail)$")

ALWAYS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
)


def policy_for(path: str) -> str:
    """The Content-Security-Policy for a response to `path` that did not set one itself."""
    return CONTENT_POLICY if CONTENT_PATH.match(path) else PAGE_POLICY


class SecurityHeaders:
    """Adds the security headers to every HTTP response (without replacing ones a route set)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = policy_for(scope.get("path", "")).encode()

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = [(b"content-security-policy", policy), *ALWAYS]
                headers.extend((name, value) for name, value in extra if name not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


DOCS_CDN = "https://cdn.jsdelivr.net"
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def docs_page(page: HTMLResponse) -> HTMLResponse:
    """FastAPI's /docs and /redoc page under a policy of its own: their scripts come from the CDN
    they name, and their one inline script is allowed by its hash (never 'unsafe-inline')."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(bytes(page.body))
    )
    page.headers["Content-Security-Policy"] = (
        f"default-src 'self'; script-src 'self' {DOCS_CDN} {hashes}; style-src 'self' {DOCS_CDN} 'unsafe-inline'; "
        f"img-src 'self' data: https://fastapi.tiangolo.com {DOCS_CDN}; worker-src 'self' blob:; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )
    return page
