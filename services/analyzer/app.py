from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from typing import Any

from nats.js.errors import KeyNotFoundError
from pydantic import ValidationError

from artdag_common import contracts, rpc, streams, subjects
from artdag_common.bus import publish_event
from artdag_common.cid import validate_cid
from artdag_common.content_store import ContentStore, open_store_async
from artdag_common.errors import ArtdagError, InvalidInputError, invalid_input
from artdag_common.ids import analysis_id, canonical_json
from artdag_common.media_limits import InputLimits
from artdag_common.registration import store_document
from artdag_common.restore import local_path_restoring
from artdag_common.runtime import ServiceRuntime
from artdag_common.schemas import (
    AnalysisProgress,
    AnalysisReply,
    AnalyzeRequest,
    CidRequest,
    CidsRequest,
    ContentOrigin,
    MediaInfo,
    ProbeManyReply,
    ProbeOutcome,
    RpcErrorBody,
)
from services.analyzer.features import (
    ANALYZER_VERSION,
    AUDIO_FEATURES,
    VIDEO_FEATURES,
    AnalysisParams,
    analyze_file,
)
from services.analyzer.features.spectral import warm_up
from services.analyzer.media_info import probe_file
from services.analyzer.settings import AnalyzerSettings

log = logging.getLogger(__name__)

PROBE_VERSION = "1"
PROGRESS_EVERY_S = 0.5


class Analyzer:
    """Answers probe and analyze requests; results are cached by analysis id, failures never."""

    def __init__(self, runtime: ServiceRuntime, settings: AnalyzerSettings, store: ContentStore) -> None:
        self.runtime = runtime
        self.store = store
        self.scratch = settings.home / "scratch" / runtime.instance
        self.limits = InputLimits.of(settings)
        # Analyses read whole files and use the CPU: a few at a time, off the event loop.
        self.slots = asyncio.Semaphore(2)
        self.in_flight: dict[str, asyncio.Future[AnalysisReply]] = {}
        self.counts = {"probed": 0, "probe_hits": 0, "analyzed": 0, "analysis_hits": 0, "failed": 0}
        self.warming: asyncio.Task[None] | None = None

    async def open(self) -> None:
        self.cache = await self.runtime.js.key_value(streams.KV_ANALYSIS.bucket)

    async def probe(self, request: CidRequest) -> MediaInfo:
        cid = validate_cid(request.cid)
        # Frames are counted up to the limit: a count made under another limit is another answer.
        key = analysis_id(cid, ["metadata"], {"max_frames": self.limits.max_frames}, PROBE_VERSION)
        try:
            entry = await self.cache.get(key)
            self.counts["probe_hits"] += 1
            return MediaInfo.model_validate_json(entry.value or b"")
        except KeyNotFoundError:
            pass
        async with self.slots:
            path = await local_path_restoring(self.runtime.nc, self.store, cid, self.scratch)
            info = await asyncio.to_thread(probe_file, path, cid, self.limits)
        await self.cache.put(key, info.model_dump_json().encode())
        self.counts["probed"] += 1
        return info

    async def probe_many(self, request: CidsRequest) -> ProbeManyReply:
        """Each cid probed (cached ones answered at once, the others a few at a time); one outcome each."""

        async def outcome(cid: str) -> ProbeOutcome:
            try:
                return ProbeOutcome(info=await self.probe(CidRequest(cid=cid)))
            except ArtdagError as exc:
                return ProbeOutcome(error=RpcErrorBody(code=exc.code, message=exc.message, field=exc.field))

        return ProbeManyReply(outcomes=list(await asyncio.gather(*(outcome(cid) for cid in request.cids))))

    async def analyze(self, request: AnalyzeRequest) -> AnalysisReply:
        cid = validate_cid(request.cid)
        features = sorted(set(request.features))
        unknown = [f for f in features if f not in AUDIO_FEATURES | VIDEO_FEATURES]
        if unknown:
            known = ", ".join(sorted(AUDIO_FEATURES | VIDEO_FEATURES))
            raise InvalidInputError(f"unknown feature {unknown[0]!r} (known: {known})", field="features")
        try:
            params = AnalysisParams.model_validate(request.params)
        except ValidationError as exc:
            raise invalid_input(exc, prefix="params") from None
        key = analysis_id(cid, features, params.model_dump(mode="json"), ANALYZER_VERSION)
        cached = await self._cached(key)
        if cached is not None:
            self.counts["analysis_hits"] += 1
            return cached
        # The same analysis asked for twice at once is computed once.
        running = self.in_flight.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[AnalysisReply] = asyncio.get_running_loop().create_future()
        self.in_flight[key] = future
        try:
            reply = await self._compute(key, cid, features, params)
            future.set_result(reply)
            return reply
        except BaseException as exc:
            self.counts["failed"] += 1
            future.set_exception(exc)
            future.exception()  # retrieved: waiters get it, nobody else needs to
            raise
        finally:
            del self.in_flight[key]

    async def _cached(self, key: str) -> AnalysisReply | None:
        try:
            entry = await self.cache.get(key)
        except KeyNotFoundError:
            return None
        result_cid = (entry.value or b"").decode()
        if not await self.store.exists(result_cid):
            return None
        body = await self.store.get_bytes(result_cid)
        return AnalysisReply(analysis_id=key, result_cid=result_cid, cached=True, result=json.loads(body))

    async def _compute(self, key: str, cid: str, features: list[str], params: AnalysisParams) -> AnalysisReply:
        loop = asyncio.get_running_loop()
        last = 0.0

        def progress(fraction: float) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= PROGRESS_EVERY_S:
                last = now
                event = AnalysisProgress(analysis_id=key, cid=cid, fraction=max(0.0, min(1.0, fraction)))
                asyncio.run_coroutine_threadsafe(
                    publish_event(self.runtime.js, subjects.analysis_progress(key), event), loop
                )

        async with self.slots:
            path = await local_path_restoring(self.runtime.nc, self.store, cid, self.scratch)
            analyze = functools.partial(analyze_file, path, features, params, progress, limits=self.limits)
            result: dict[str, Any] = await asyncio.to_thread(analyze)
        # Only a complete result is stored and indexed: a failure above leaves nothing behind.
        stored = await store_document(
            self.store,
            canonical_json(result),
            functools.partial(self.runtime.rpc.call, contracts.Cache.register),
            name=f"analysis-{key[:12]}.json",
            origin=ContentOrigin.ANALYSIS,
        )
        result_cid = stored.cid
        await self.cache.put(key, result_cid.encode())
        self.counts["analyzed"] += 1
        return AnalysisReply(analysis_id=key, result_cid=result_cid, cached=False, result=result)


async def start(runtime: ServiceRuntime, settings: AnalyzerSettings) -> None:
    analyzer = Analyzer(runtime, settings, await open_store_async(settings, runtime.stack, nc=runtime.nc))
    await analyzer.open()
    runtime.health_details = lambda: {
        "version": ANALYZER_VERSION,
        "features": sorted(AUDIO_FEATURES | VIDEO_FEATURES),
        **analyzer.counts,
    }
    await rpc.serve(runtime.nc, contracts.Analyzer.probe, analyzer.probe)
    await rpc.serve(runtime.nc, contracts.Analyzer.probe_many, analyzer.probe_many, concurrency=4)
    await rpc.serve(runtime.nc, contracts.Analyzer.analyze, analyzer.analyze)
    # Listening comes first; the FFT library loads meanwhile (a first request waits for it only if it is early).
    analyzer.warming = asyncio.create_task(asyncio.to_thread(warm_up))
