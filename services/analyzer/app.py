from __future__ import annotations

import asyncio
import logging

from nats.js.errors import KeyNotFoundError

from artdag_common import rpc, streams
from artdag_common.cid import validate_cid
from artdag_common.content_store import open_store
from artdag_common.ids import analysis_id
from artdag_common.runtime import ServiceRuntime
from artdag_common.schemas import CidRequest, MediaInfo
from services.analyzer.media_info import probe_file
from services.analyzer.settings import AnalyzerSettings

log = logging.getLogger(__name__)

PROBE_VERSION = "1"


async def start(runtime: ServiceRuntime, settings: AnalyzerSettings) -> None:
    store = open_store(settings)
    cache = await runtime.js.key_value(streams.KV_ANALYSIS.bucket)
    scratch = settings.home / "scratch" / runtime.instance
    counts = {"probed": 0, "probe_hits": 0}
    # Probing reads whole files: a few at a time, off the event loop.
    slots = asyncio.Semaphore(2)

    async def probe(request: CidRequest) -> MediaInfo:
        cid = validate_cid(request.cid)
        key = analysis_id(cid, ["metadata"], {}, PROBE_VERSION)
        try:
            entry = await cache.get(key)
            counts["probe_hits"] += 1
            return MediaInfo.model_validate_json(entry.value or b"")
        except KeyNotFoundError:
            pass
        async with slots:
            path = await store.local_path(cid, scratch)
            info = await asyncio.to_thread(probe_file, path, cid)
        await cache.put(key, info.model_dump_json().encode())
        counts["probed"] += 1
        return info

    runtime.health_details = lambda: {"features": ["metadata"], **counts}
    await rpc.serve(runtime.nc, "analyzer", "probe", CidRequest, probe)
