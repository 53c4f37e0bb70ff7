from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, PlainTextResponse
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from artdag_common import __version__
from artdag_common.content_store import open_store_async
from artdag_common.runtime import ServiceRuntime
from artdag_common.telemetry import setup_tracing
from services.gateway import api, api_assets, api_auth, api_cache, api_storage, errors, ui
from services.gateway.deps import Gateway
from services.gateway.headers import SecurityHeaders, docs_page
from services.gateway.settings import GatewaySettings


def create_app(settings: GatewaySettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        setup_tracing("gateway", settings.otlp_endpoint)
        runtime = ServiceRuntime("gateway", settings)
        await runtime.open()
        gateway = Gateway(runtime, await open_store_async(settings, runtime.stack, nc=runtime.nc), settings)
        await gateway.auth.start()
        app.state.gateway = gateway
        try:
            yield
        finally:
            runtime.stopping.set()
            await runtime.close()

    app = FastAPI(
        title="artdag",
        version=__version__,
        lifespan=lifespan,
        description="Render media from recipes: upload inputs, submit runs, download outputs.",
        docs_url=None,
        redoc_url=None,
    )
    errors.install(app)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return docs_page(get_swagger_ui_html(openapi_url="/openapi.json", title="artdag API"))

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return docs_page(get_redoc_html(openapi_url="/openapi.json", title="artdag API", with_google_fonts=False))

    # Kubernetes probes on the API port: ready = HTTP up and connected to NATS (not: every service healthy).
    @app.get("/livez", include_in_schema=False)
    async def livez() -> PlainTextResponse:
        return PlainTextResponse("ok\n")

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> PlainTextResponse:
        gw: Gateway | None = getattr(request.app.state, "gateway", None)
        reason = "starting" if gw is None else gw.runtime.not_ready()
        return PlainTextResponse(
            "ready\n" if reason is None else f"{reason}\n", status_code=200 if reason is None else 503
        )

    app.include_router(api_auth.router)
    app.include_router(api_cache.router)
    app.include_router(api_storage.router)
    app.include_router(api_assets.router)
    app.include_router(api.router)
    ui.install(app)
    app.add_middleware(SecurityHeaders)  # on every response, errors included
    # Outermost: the client's address (what limits count) as a trusted proxy forwarded it.
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    return app
