from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from artdag_common import __version__
from artdag_common.content_store import open_store_async
from artdag_common.runtime import ServiceRuntime
from artdag_common.telemetry import setup_tracing
from services.gateway import api, api_cache, api_storage, errors, ui
from services.gateway.deps import Gateway
from services.gateway.settings import GatewaySettings


def create_app(settings: GatewaySettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        setup_tracing("gateway", settings.otlp_endpoint)
        runtime = ServiceRuntime("gateway", settings)
        await runtime.open()
        app.state.gateway = Gateway(runtime, await open_store_async(settings, runtime.stack, nc=runtime.nc), settings)
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
    )
    errors.install(app)
    app.include_router(api_cache.router)
    app.include_router(api_storage.router)
    app.include_router(api.router)
    ui.install(app)
    return app
