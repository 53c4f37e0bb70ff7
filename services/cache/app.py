from __future__ import annotations

from typing import Any

from artdag_common import rpc
from artdag_common.db import make_engine, session_factory
from artdag_common.runtime import ServiceRuntime
from artdag_common.schemas import CidRequest, ContentRecord
from services.cache.service import ContentCatalog
from services.cache.settings import CacheSettings


async def start(runtime: ServiceRuntime, settings: CacheSettings) -> None:
    engine = make_engine(settings.effective_database_url)
    runtime.stack.push_async_callback(engine.dispose)
    catalog = ContentCatalog(session_factory(engine))
    counts = {"registered": 0}

    async def register(request: ContentRecord) -> ContentRecord:
        counts["registered"] += 1
        return await catalog.register(request)

    async def stat(request: CidRequest) -> ContentRecord:
        return await catalog.get(request.cid)

    def details() -> dict[str, Any]:
        return dict(counts)

    runtime.health_details = details
    await rpc.serve(runtime.nc, "cache", "register", ContentRecord, register)
    await rpc.serve(runtime.nc, "cache", "stat", CidRequest, stat)
