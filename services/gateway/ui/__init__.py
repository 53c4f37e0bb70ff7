"""The web UI: Jinja2 pages and HTMX fragments served by the gateway, assets vendored under static/.

`install(app)` adds it to the gateway: static files, the Accept negotiation that lets
`/runs` (and friends) serve pages to browsers and JSON to API clients, the pages, the
form actions, the server-sent event streams and error pages for people.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from artdag_common.errors import ArtdagError
from artdag_common.schemas import Principal
from services.gateway import errors
from services.gateway.auth import authenticator, client_address, credentials, local_path
from services.gateway.ui import actions, events, locations, pages
from services.gateway.ui.negotiate import PAGE_PREFIX, NegotiationMiddleware, wants_html
from services.gateway.ui.render import STATIC, render, signed_in

Handler = Callable[[Request, Exception], Awaitable[Response]]

HEADINGS = {
    400: ("Bad request", "The request could not be understood."),
    401: ("Please log in", "This page needs you to be logged in."),
    403: ("Not allowed", "You may not see or do this."),
    404: ("Not found", "There is nothing here. It may have been deleted, or the link is wrong."),
    409: ("Conflict", "This cannot be done in the current state."),
    413: ("Too large", "That is larger than this server accepts."),
    422: ("Something is not right", "The request was understood, but some of it is invalid."),
    503: ("Temporarily unavailable", "A service did not answer in time. Try again in a moment."),
}
HINTS = {
    404: "Runs, recipes, effects and media are listed in the menu above.",
    503: "If this persists, check /health.",
}


def _page_request(request: Request) -> bool:
    """Whether an error should be a page: a browser or HTMX asking for a page (never the JSON API)."""
    path = request.url.path
    if path.startswith(("/events/", "/static/")):
        return False
    ui_path = path.startswith((f"{PAGE_PREFIX}/", "/run/", "/recipe/", "/effect/", "/download/"))
    headers = {k.lower(): v for k, v in request.headers.items()}
    return ui_path or (request.method == "GET" and wants_html(headers))


async def _who(request: Request, status: int) -> Principal | None:
    """The signed-in user for the nav of an error page that no route answered (an unknown path)."""
    known = signed_in(request)
    if known is not None or status in (401, 429):  # a refused token is not asked about twice
        return known
    try:
        token, _ = credentials(request)
        if token is None:
            return None
        return await authenticator(request).verify(token, client_address(request))
    except ArtdagError:
        return None


async def error_page(request: Request, status: int, message: str, field: str | None) -> Response:
    heading, default = HEADINGS.get(status, ("Something went wrong", "The server could not finish this request."))
    if status == 401 and message.startswith("authentication required"):
        message = ""  # the API's hint about headers is not for people: the page offers the login form
    extra: dict[str, str] = {}
    if request.url.path == "/auth":  # a refused login: try again towards where it was going (never echo the token)
        extra["here"] = local_path(request.query_params.get("next", "/"))
    return render(
        request,
        "error.html",
        status_code=status,
        user=await _who(request, status),
        **extra,
        status=status,
        heading=heading,
        message=message or default,
        field=field,
        hint=HINTS.get(status),
    )


def install(app: FastAPI) -> None:
    """Add the web UI to the gateway app (call after `errors.install` and the API routers)."""
    app.add_middleware(NegotiationMiddleware)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(pages.router)
    app.include_router(actions.router)
    app.include_router(locations.router)
    app.include_router(events.router)

    # The JSON handlers `errors.install` registered: API clients keep getting exactly those.
    json_artdag = cast(Handler, app.exception_handlers[ArtdagError])
    json_validation = cast(Handler, app.exception_handlers[RequestValidationError])

    async def on_artdag_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, ArtdagError) and _page_request(request):
            return await error_page(request, errors.status_for(exc), exc.message, exc.field)
        return await json_artdag(request, exc)

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, RequestValidationError) and _page_request(request):
            first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
            loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
            return await error_page(request, 422, str(first.get("msg")), ".".join(loc) or None)
        return await json_validation(request, exc)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if _page_request(request):
            return await error_page(request, exc.status_code, "" if exc.status_code == 404 else str(exc.detail), None)
        code = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http")
        body = errors.error_body(code, str(exc.detail), None)
        return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    app.add_exception_handler(ArtdagError, on_artdag_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
