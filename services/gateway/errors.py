"""The one place that maps artdag errors to HTTP status codes and bodies.

Every error the API answers is JSON of one shape (`ErrorBody`), whatever went wrong: an
artdag error, a request that fails validation, a bus outage, or a bug (a generic 500 whose
detail goes to the log only). `responses()` documents that shape and the statuses in OpenAPI.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from artdag_common.bus import TRANSIENT
from artdag_common.errors import (
    ArtdagError,
    BadRequestError,
    ConflictError,
    ForbiddenError,
    InsufficientStorageError,
    InvalidCidError,
    InvalidInputError,
    InvalidMediaError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitedError,
    RetryableError,
    SyntaxInputError,
    UnauthorizedError,
)

log = logging.getLogger(__name__)

# Most specific first.
STATUS_BY_ERROR: tuple[tuple[type[ArtdagError], int], ...] = (
    (InvalidCidError, 400),
    (SyntaxInputError, 400),
    (BadRequestError, 400),
    (UnauthorizedError, 401),
    (ForbiddenError, 403),
    (RateLimitedError, 429),
    (ConflictError, 409),
    (PayloadTooLargeError, 413),
    (NotFoundError, 404),
    (InvalidMediaError, 422),
    (InvalidInputError, 422),
    (InsufficientStorageError, 507),
    (RetryableError, 503),
)


# The bus being away (restarting, a node lost, a leader being elected) is an outage the caller
# can wait out: 503 with Retry-After, never a 500.
BUS_OUTAGES: tuple[type[Exception], ...] = tuple(
    kind for kind in TRANSIENT if issubclass(kind, Exception) and not issubclass(kind, ArtdagError)
)
RETRY_AFTER_S = 2


def status_for(exc: ArtdagError) -> int:
    for cls, status in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return status
    return 500


class ErrorDetail(BaseModel):
    """What went wrong, typed: a stable code, a sentence for people, the field it concerns."""

    code: str = Field(description="stable and machine-readable: invalid, not_found, unauthorized, unavailable, …")
    message: str = Field(description="what is wrong and what to do next")
    field: str | None = Field(default=None, description="the request field, header or parameter at fault")


class ErrorBody(BaseModel):
    """The body of every error the API answers (4xx and 5xx)."""

    detail: str = Field(description="one line: the field (if any) and the message")
    error: ErrorDetail


def error_body(code: str, message: str, field: str | None) -> dict[str, object]:
    detail = f"{field}: {message}" if field else message
    return ErrorBody(detail=detail, error=ErrorDetail(code=code, message=message, field=field)).model_dump()


STATUS_TEXT = {
    400: "The request cannot be served as sent (a malformed value, path or body).",
    401: "No valid credentials: send `Authorization: Bearer <token>` or log in at /auth.",
    403: "Not allowed (or a session-cookie form without its CSRF token).",
    404: "Not found (another user's things read as not found too).",
    409: "Conflicts with the current state.",
    413: "Larger than the server accepts.",
    416: "The Range lies outside the content.",
    422: "A field, parameter or header is invalid: `error.field` names it.",
    429: "Too many requests (failed authentications, open event streams): wait `Retry-After` seconds.",
    500: "An unexpected failure; its detail is logged on the server, never sent.",
    503: "A service or the message bus is unavailable for now: try again after `Retry-After` seconds.",
    507: "The server is short of disk space (below ARTDAG_MIN_FREE_BYTES): nothing new is taken in.",
}
RETRY_AFTER_HEADER = {
    "Retry-After": {"description": "seconds to wait before trying again", "schema": {"type": "integer", "minimum": 1}}
}
# What any route may answer: a request that cannot be parsed (a body that is not JSON), a bad
# parameter, a bug, an outage.
COMMON = (400, 422, 500, 503)
# What a route that reads the caller's token may answer besides: a bad token, a session form
# without its CSRF token, too many failed authentications from this client.
AUTHENTICATED = (401, 403, 429)


ERROR_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}


def responses(*statuses: int, authenticated: bool = True, not_json: bool = False) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the errors a route answers: `statuses`, the common ones and, for a
    route that reads the caller's token, the authentication ones; every one an `ErrorBody`.

    `not_json`: the route's own answer is not JSON (an event stream), so its errors name their
    media type themselves (FastAPI would give them the route's)."""
    codes = set(statuses) | set(COMMON) | (set(AUTHENTICATED) if authenticated else set())
    documented: dict[int | str, dict[str, Any]] = {}
    for status in sorted(codes):
        entry: dict[str, Any] = {"description": STATUS_TEXT.get(status, "An error.")}
        entry.update({"content": ERROR_CONTENT} if not_json else {"model": ErrorBody})
        if status in (429, 503):
            entry["headers"] = RETRY_AFTER_HEADER
        documented[status] = entry
    return documented


class SafetyNet:
    """Outermost: an exception no handler took becomes a generic JSON 500 (its detail is logged,
    never sent); once a response has begun, the connection is just closed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            log.exception("%s %s failed", scope.get("method"), scope.get("path"))
            if started:
                return
            body = json.dumps(error_body("internal", "internal error", None)).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
                }
            )
            await send({"type": "http.response.body", "body": body})


def install(app: FastAPI) -> None:
    """Register the handlers that turn errors into JSON bodies that name the field."""

    async def on_artdag_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ArtdagError)  # registered for ArtdagError only
        status = status_for(exc)
        if status >= 500:
            log.warning("request failed: %s", exc)
        message = exc.message if status != 500 else "internal error"
        headers: dict[str, str] = {}
        if isinstance(exc, UnauthorizedError):
            headers["WWW-Authenticate"] = 'Bearer realm="artdag"'
        if isinstance(exc, RateLimitedError):
            headers["Retry-After"] = str(max(1, int(exc.retry_after_s + 0.999)))
        elif status == 503:
            headers["Retry-After"] = str(RETRY_AFTER_S)
        return JSONResponse(error_body(exc.code, message, exc.field), status_code=status, headers=headers)

    async def on_bus_outage(_request: Request, exc: Exception) -> JSONResponse:
        log.warning("request failed, the bus is unavailable: %s", type(exc).__name__)
        message = "the message bus is unavailable; try again shortly"
        return JSONResponse(
            error_body("unavailable", message, None), status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)}
        )

    async def on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        # FastAPI puts where the value came from first (body, query, path, header, cookie); a field
        # may have the same name (`?path=`), so only that first place is dropped.
        loc = [str(p) for p in first.get("loc", ())]
        if loc and loc[0] in ("body", "query", "path", "header", "cookie"):
            loc = loc[1:]
        return JSONResponse(error_body("invalid", str(first.get("msg")), ".".join(loc) or None), status_code=422)

    app.add_exception_handler(ArtdagError, on_artdag_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    for outage in BUS_OUTAGES:
        app.add_exception_handler(outage, on_bus_outage)
    app.add_middleware(SafetyNet)
