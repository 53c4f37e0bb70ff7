"""Who is asking: tokens (Bearer header or session cookie), a short-lived cache of verified tokens that the
revocation list cuts short, CSRF for cookie-authenticated writes, and a limit on failed checks per client.

Contract for the web UI and other clients:

- `Authorization: Bearer <token>` — API clients; no CSRF token needed.
- Cookie `artdag_session` (HttpOnly, SameSite=Lax, Secure over https) — set by `GET /auth?auth_token=…`.
  With it, every POST/PUT/PATCH/DELETE must carry header `X-CSRF-Token` (or, in an urlencoded or small
  multipart form, field `csrf_token`) equal to the cookie `artdag_csrf` (not HttpOnly; set alongside).
- Routes take `CurrentUser` (401 without a valid token) or `OptionalUser` (None when anonymous).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import Depends, Request
from nats.js.kv import KeyValue

from artdag_common import streams
from artdag_common.contracts import Auth
from artdag_common.errors import ForbiddenError, RateLimitedError, UnauthorizedError
from artdag_common.runtime import ServiceRuntime
from artdag_common.schemas import Principal, VerifyTokenRequest
from artdag_common.settings import CommonSettings
from artdag_common.tokens import token_hash, user_key, well_formed
from services.gateway.uploads import multipart_parts

log = logging.getLogger(__name__)

SESSION_COOKIE = "artdag_session"
CSRF_COOKIE = "artdag_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# A form is searched for `csrf_token` only up to this size; bigger uploads must send the header.
CSRF_FORM_MAX_BYTES = 1024 * 1024


def client_address(request: Request) -> str:
    """The client's address, what failed checks are counted against: the peer's, or the one a
    trusted proxy (ARTDAG_TRUSTED_PROXIES) forwarded."""
    return request.client.host if request.client else "unknown"


class FailureLimiter:
    """At most `limit` failed checks per client within `window_s` (a sliding window); then 429."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._failures.setdefault(client, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def check(self, client: str) -> None:
        now = time.monotonic()
        times = self._recent(client, now)
        if len(times) >= self.limit:
            retry = max(1.0, times[0] + self.window_s - now)
            raise RateLimitedError("too many failed authentication attempts; try again later", retry_after_s=retry)
        if not times:
            self._failures.pop(client, None)

    def fail(self, client: str) -> None:
        now = time.monotonic()
        self._recent(client, now).append(now)
        if len(self._failures) > 100_000:  # bound memory under a spray of addresses
            for key in list(self._failures)[:50_000]:
                self._failures.pop(key, None)


class Authenticator:
    """Verifies tokens with the auth service, caches answers briefly, follows the revocation list."""

    def __init__(self, runtime: ServiceRuntime, settings: CommonSettings) -> None:
        self.runtime = runtime
        self.settings = settings
        self.limiter = FailureLimiter(settings.auth.fail_limit, settings.auth.fail_window_s)
        self._cache: dict[str, tuple[Principal, float]] = {}
        self.revoked_tokens: set[str] = set()
        self.revoked_users: dict[str, float] = {}
        self._watcher: Any = None
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    async def start(self) -> None:
        """Load the revocation list and follow it: a revocation reaches this replica within milliseconds."""
        kv: KeyValue = await self.runtime.js.key_value(streams.KV_REVOKED.bucket)
        self._watcher = await kv.watchall()
        self._task = asyncio.create_task(self._follow())
        self.runtime.stack.push_async_callback(self.stop)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ready.wait(), 5.0)

    async def stop(self) -> None:
        if self._watcher is not None:
            with contextlib.suppress(Exception):
                await self._watcher.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _follow(self) -> None:
        async for entry in self._entries():
            if entry is None:  # the initial values are all in
                self.ready.set()
                continue
            self.apply_revocation(entry.key, entry.value or b"")

    async def _entries(self) -> AsyncIterator[Any]:
        async for entry in self._watcher:
            yield entry

    def apply_revocation(self, key: str, value: bytes) -> None:
        if key.startswith("tok."):
            hashed = key[4:]
            self.revoked_tokens.add(hashed)
            self._cache.pop(hashed, None)
        elif key.startswith("user."):
            try:
                at = float(value.decode() or "inf")
            except ValueError:
                at = float("inf")
            self.revoked_users[key] = max(at, self.revoked_users.get(key, 0.0))
            for hashed, (principal, _) in list(self._cache.items()):
                if user_key(principal.user) == key:
                    self._cache.pop(hashed, None)

    def refusal(self, principal: Principal) -> str | None:
        """Why a principal verified earlier is no longer good (revoked, expired), or None."""
        if principal.token_hash in self.revoked_tokens:
            return "token revoked"
        if principal.expires_at is not None and principal.expires_at <= time.time():
            return "token expired"
        cut = self.revoked_users.get(user_key(principal.user))
        if cut is not None and principal.issued_at <= cut:
            return "token revoked"
        return None

    async def verify(self, token: str, client: str) -> Principal:
        """The token's principal, or `UnauthorizedError` (counted against `client`) / `RateLimitedError`.

        Verified first, counted after: only a refused token counts, and only a refused token is
        held back once its client is over the limit. A valid token always gets through, even from
        an address that many clients share (a proxy's, a NAT's).
        """
        try:
            if not well_formed(token):
                raise UnauthorizedError("malformed token")
            hashed = token_hash(token)
            if hashed in self.revoked_tokens:
                raise UnauthorizedError("token revoked")
            cached = self._cache.get(hashed)
            if cached is not None and cached[1] > time.monotonic():
                principal = cached[0]
            else:
                principal = await self.runtime.rpc.call(Auth.verify, VerifyTokenRequest(token=token))
                if self.settings.auth.cache_s > 0:
                    self._cache[hashed] = (principal, time.monotonic() + self.settings.auth.cache_s)
                    if len(self._cache) > 10_000:
                        self._cache.pop(next(iter(self._cache)))
            reason = self.refusal(principal)
            if reason is not None:
                self._cache.pop(hashed, None)
                raise UnauthorizedError(reason)
            return principal
        except UnauthorizedError:
            self.limiter.check(client)  # over the limit: 429 (not counted again, so the window runs out)
            self.limiter.fail(client)
            raise


def authenticator(request: Request) -> Authenticator:
    auth: Authenticator = request.app.state.gateway.auth
    return auth


def credentials(request: Request) -> tuple[str | None, bool]:
    """The token the request carries and whether it came from the session cookie."""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise UnauthorizedError("the Authorization header must be 'Bearer <token>'", field="authorization")
        return value.strip(), False
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return cookie, True
    return None, False


async def _form_csrf(request: Request) -> str | None:
    content_type = request.headers.get("content-type", "")
    length = request.headers.get("content-length")
    if not (length and length.isdigit() and int(length) <= CSRF_FORM_MAX_BYTES):
        return None
    if content_type.startswith("application/x-www-form-urlencoded"):
        body = await request.body()  # kept by the request: the route reads it again
        return dict(parse_qsl(body.decode("utf-8", "replace"))).get(CSRF_FIELD)
    if content_type.startswith("multipart/form-data"):
        body = await request.body()

        async def once() -> AsyncIterator[bytes]:
            yield body

        name: str | None = None
        value = bytearray()
        async for event in multipart_parts(once(), content_type):
            if event is None:
                if name == CSRF_FIELD:
                    return value.decode("utf-8", "replace")
                name = None
            elif isinstance(event, bytes):
                if name == CSRF_FIELD:
                    value.extend(event)
            else:
                name, value = event.name, bytearray()
    return None


async def check_csrf(request: Request) -> None:
    """Double submit: the `artdag_csrf` cookie must come back in `X-CSRF-Token` (or form field `csrf_token`)."""
    expected = request.cookies.get(CSRF_COOKIE)
    sent = request.headers.get(CSRF_HEADER) or await _form_csrf(request)
    if not expected or not sent or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise ForbiddenError(
            f"a form sent with the session cookie needs the {CSRF_HEADER} header (the {CSRF_COOKIE} cookie's value)",
            field="csrf_token",
        )


async def optional_user(request: Request) -> Principal | None:
    """The caller's principal, or None when the request carries no credentials."""
    token, via_cookie = credentials(request)
    if token is None:
        return None
    principal = await authenticator(request).verify(token, client_address(request))
    if via_cookie and request.method in UNSAFE_METHODS:
        await check_csrf(request)
    request.state.principal = principal
    return principal


async def current_user(principal: Annotated[Principal | None, Depends(optional_user)]) -> Principal:
    """The caller's principal; 401 without valid credentials."""
    if principal is None:
        raise UnauthorizedError("authentication required: send 'Authorization: Bearer <token>' or log in at /auth")
    return principal


CurrentUser = Annotated[Principal, Depends(current_user)]
OptionalUser = Annotated[Principal | None, Depends(optional_user)]


def local_path(target: str) -> str:
    """`target` if it is a path on this server, else `/`: where a login may send the browser next
    (never an open redirect)."""
    local = target.startswith("/") and not target.startswith("//") and "\\" not in target
    return target if local else "/"


def new_csrf_token() -> str:
    """A fresh double-submit token for the `artdag_csrf` cookie."""
    return secrets.token_urlsafe(32)
