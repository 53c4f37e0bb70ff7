"""The one place that maps artdag errors to HTTP status codes and bodies."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

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


def error_body(code: str, message: str, field: str | None) -> dict[str, object]:
    detail = f"{field}: {message}" if field else message
    return {"detail": detail, "error": {"code": code, "message": message, "field": field}}


def install(app: FastAPI) -> None:
    """Register the handlers that turn errors into JSON bodies that name the field."""

    async def on_artdag_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ArtdagError)  # registered for ArtdagError only
        status = status_for(exc)
        if status >= 500:
            log.warning("request failed: %s", exc)
        headers: dict[str, str] = {}
        if isinstance(exc, UnauthorizedError):
            headers["WWW-Authenticate"] = 'Bearer realm="artdag"'
        if isinstance(exc, RateLimitedError):
            headers["Retry-After"] = str(max(1, int(exc.retry_after_s + 0.999)))
        elif status == 503:
            headers["Retry-After"] = str(RETRY_AFTER_S)
        return JSONResponse(error_body(exc.code, exc.message, exc.field), status_code=status, headers=headers)

    async def on_bus_outage(_request: Request, exc: Exception) -> JSONResponse:
        log.warning("request failed, the bus is unavailable: %s", type(exc).__name__)
        message = f"the message bus is unavailable ({type(exc).__name__}); try again shortly"
        return JSONResponse(
            error_body("unavailable", message, None), status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)}
        )

    async def on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        return JSONResponse(error_body("invalid", str(first.get("msg")), ".".join(loc) or None), status_code=422)

    app.add_exception_handler(ArtdagError, on_artdag_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    for outage in BUS_OUTAGES:
        app.add_exception_handler(outage, on_bus_outage)
