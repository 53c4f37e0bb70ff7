from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from artdag_common import __version__
from artdag_common.content_store import open_store_async
from artdag_common.runtime import ServiceRuntime
from artdag_common.telemetry import setup_tracing
from services.gateway import errors, ui
from services.gateway.deps import Gateway
from services.gateway.headers import SecurityHeaders, docs_page
from services.gateway.routes import analysis, assets, auth, cache, effects, ipfs, recipes, runs, storage, system
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

    # FastAPI tries routes in the order they are included: the probes, the API, then the web UI.
    app.include_router(system.probes)
    app.include_router(auth.router)
    app.include_router(cache.router)
    app.include_router(ipfs.router)
    app.include_router(storage.router)
    app.include_router(assets.router)
    app.include_router(effects.router)
    app.include_router(runs.router)
    app.include_router(recipes.router)
    app.include_router(analysis.router)
    app.include_router(system.router)
    ui.install(app)
    app.add_middleware(SecurityHeaders)  # on every response, errors included
    # Outermost: the client's address (what limits count) as a trusted proxy forwarded it.
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    return app
