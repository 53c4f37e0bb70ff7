from __future__ import annotations

import asyncio
import logging
from typing import Any

from artdag_common import rpc, streams
from artdag_common.content_store import open_store_async
from artdag_common.contracts import Cache
from artdag_common.db import dispose_engine, make_engine, session_factory
from artdag_common.disk import Ballast
from artdag_common.errors import ArtdagError, NotFoundError
from artdag_common.keys import load_or_create_keys
from artdag_common.metrics import CACHE_BYTES
from artdag_common.runtime import ServiceRuntime
from artdag_common.schemas import (
    CidRequest,
    CidsRequest,
    ContentDeleted,
    ContentFound,
    ContentLocations,
    ContentOrigin,
    ContentRecord,
    ContentRecords,
    HoldReply,
    HoldRequest,
    L1Keys,
    L1KeysRequest,
    Publication,
    PublishRequest,
    RegisterManyReply,
    RegisterOutcome,
    RpcErrorBody,
    StorageListRequest,
    StorageProviderList,
    StorageProviderRecord,
    StorageProviderRequest,
    StorageTestReply,
    StorageTypeRequest,
    StorageTypeSchema,
    UsageReply,
    UsageRequest,
)
from services.cache.assets import AssetBook
from services.cache.handlers import RunFollower
from services.cache.providers import ProviderBook, ProviderPolicy, SecretBox, type_schema
from services.cache.publish import Publisher
from services.cache.replication import INPUTS, OUTPUTS, Replicator
from services.cache.service import ContentCatalog
from services.cache.settings import CacheSettings

log = logging.getLogger(__name__)

# Copies pending this long without a word are queued again (duplicates do no harm: a copy is idempotent).
REQUEUE_EVERY_S = 600.0


async def start(runtime: ServiceRuntime, settings: CacheSettings) -> None:
    engine = make_engine(settings.effective_database_url)
    runtime.stack.push_async_callback(dispose_engine, engine)
    sessions = session_factory(engine)
    store = await open_store_async(settings, runtime.stack, nc=runtime.nc)
    # Room kept aside on the home's disk for deleting content when the disk is full (see `Ballast`).
    ballast = Ballast(settings.home / "ballast")
    await asyncio.to_thread(ballast.ensure)
    catalog = ContentCatalog(
        sessions,
        store,
        max_bytes=settings.cache_max_bytes,
        evict_min_age_s=settings.cache_evict_min_age_s,
        ballast=ballast,
        quota_bytes=settings.quota_bytes,
    )
    providers = ProviderBook(
        sessions, SecretBox.from_settings(settings.secrets_key, settings.home), ProviderPolicy.from_settings(settings)
    )
    replicator = Replicator(
        runtime.js,
        sessions,
        providers,
        store,
        spool=settings.spool_dir,
        max_deliver=streams.CACHE_REPLICATION.max_deliver,
        ack_wait_s=settings.ack_wait_s,
    )
    catalog.offload_copied = True
    assets = AssetBook(sessions, catalog)
    # The L1's keys: made on first start (files mode 0600, never in the database).
    keys = await asyncio.to_thread(load_or_create_keys, settings.keys_dir)
    publisher = Publisher(
        catalog,
        keys,
        l2_server=settings.auth.l2_server if settings.auth.l2_mode else None,
        l1_url=settings.auth.public_url or "http://127.0.0.1:8100",
        timeout_s=settings.auth.l2_timeout_s,
        l2_domain=settings.auth.l2_domain if settings.auth.l2_mode else None,
    )
    follower = RunFollower(
        catalog,
        store,
        rendered_by=settings.provenance_owner,
        max_deliver=streams.CACHE_RUN_COMPLETIONS.max_deliver,
        keys=keys,
        on_outputs=lambda cids, owner: replicator.replicate(cids, owner, OUTPUTS),
        ensure_local=replicator.ensure_local,
        l2_domain=settings.auth.l2_domain if settings.auth.l2_mode else None,
    )
    counts = {"registered": 0, "deleted": 0}

    async def register(request: ContentRecord) -> ContentRecord:
        counts["registered"] += 1
        record = await catalog.register(request)
        CACHE_BYTES.add(request.size, {"origin": request.origin.value})
        if request.origin in (ContentOrigin.UPLOAD, ContentOrigin.IMPORT):
            await replicator.replicate([record.cid], request.owner, INPUTS)
        return record

    async def register_many(request: ContentRecords) -> RegisterManyReply:
        # Each record joins the catalog's group commit; one bad record fails alone.
        done = await asyncio.gather(*(catalog.register(r) for r in request.records), return_exceptions=True)
        outcomes: list[RegisterOutcome] = []
        for result in done:
            if isinstance(result, ContentRecord):
                counts["registered"] += 1
                CACHE_BYTES.add(result.size, {"origin": result.origin.value})
                outcomes.append(RegisterOutcome(record=result))
            elif isinstance(result, ArtdagError):
                error = RpcErrorBody(code=result.code, message=result.message, field=result.field)
                outcomes.append(RegisterOutcome(error=error))
            elif isinstance(result, Exception):
                log.error("registering content failed", exc_info=result)
                outcomes.append(RegisterOutcome(error=RpcErrorBody(code="internal", message="internal error")))
            else:
                raise result  # cancellation: not the batch's to swallow
        return RegisterManyReply(outcomes=outcomes)

    async def stat(request: CidRequest) -> ContentRecord:
        return await catalog.get(request.cid, request.viewer)

    async def access(request: CidRequest) -> ContentRecord:
        return await catalog.access(request.cid, request.viewer)

    async def restore(request: CidRequest) -> ContentRecord:
        record = await catalog.get(request.cid, request.viewer)
        await replicator.ensure_local(record.cid)
        return record

    async def locations(request: CidRequest) -> ContentLocations:
        await catalog.get(request.cid, request.viewer)  # 404 for what the viewer may not see
        return await replicator.locations(request.cid, request.viewer)

    async def stat_many(request: CidsRequest) -> ContentFound:
        return ContentFound(records=await catalog.get_many(request.cids, request.viewer))

    async def usage(request: UsageRequest) -> UsageReply:
        items, size = await catalog.usage(request.user)
        return UsageReply(items=items, bytes=size)

    async def public_keys(_request: L1KeysRequest) -> L1Keys:
        return L1Keys(
            rsa_public_pem=keys.rsa_public_pem,
            ed25519_public=keys.ed25519_public_b64,
            ed25519_key_id=keys.ed25519_key_id,
        )

    async def hold(request: HoldRequest) -> HoldReply:
        return HoldReply(held=await catalog.hold(request.cids, request.user))

    async def publish(request: PublishRequest) -> Publication:
        return await publisher.publish(request)

    async def remove(request: CidRequest) -> ContentDeleted:
        deleted = await catalog.delete(request.cid, request.viewer)
        counts["deleted"] += 1
        # The copies follow: all of them if the content is gone, else those at the viewer's providers.
        try:
            await catalog.get(request.cid)
            gone = False
        except NotFoundError:
            gone = True
        viewer = request.viewer
        await replicator.forget(request.cid, None if gone or viewer is None else viewer.user)
        return deleted

    async def storage_list(request: StorageListRequest) -> StorageProviderList:
        return await providers.list(request.viewer)

    async def storage_get(request: StorageProviderRequest) -> StorageProviderRecord:
        return await providers.get(request.id)

    async def storage_delete(request: StorageProviderRequest) -> StorageProviderRecord:
        await providers.get(request.id)  # 404 before anything is removed
        await replicator.drop_provider(request.id, keep_copies=request.keep_copies)
        return await providers.delete(request.id)

    async def storage_test(request: StorageProviderRequest) -> StorageTestReply:
        return await providers.test(request.id, scratch=settings.spool_dir, viewer=request.viewer)

    async def storage_type(request: StorageTypeRequest) -> StorageTypeSchema:
        return type_schema(request.type)

    def details() -> dict[str, Any]:
        return {**counts, **follower.counts, **replicator.counts}

    runtime.health_details = details
    # Executors register every step's output: many at once, committed together (see `ContentCatalog.register`).
    await rpc.serve(runtime.nc, Cache.register, register, concurrency=64)
    await rpc.serve(runtime.nc, Cache.register_many, register_many, concurrency=8)
    await rpc.serve(runtime.nc, Cache.stat, stat)
    await rpc.serve(runtime.nc, Cache.access, access)
    await rpc.serve(runtime.nc, Cache.restore, restore, concurrency=4)
    await rpc.serve(runtime.nc, Cache.locations, locations)
    await rpc.serve(runtime.nc, Cache.copy, replicator.copy)
    await rpc.serve(runtime.nc, Cache.asset_add, assets.add)
    await rpc.serve(runtime.nc, Cache.asset_list, assets.list)
    await rpc.serve(runtime.nc, Cache.asset_delete, assets.delete)
    await rpc.serve(runtime.nc, Cache.asset_resolve, assets.resolve)
    await rpc.serve(runtime.nc, Cache.stat_many, stat_many, concurrency=4)
    await rpc.serve(runtime.nc, Cache.usage, usage, concurrency=4)
    await rpc.serve(runtime.nc, Cache.update_meta, catalog.update_meta)
    await rpc.serve(runtime.nc, Cache.list, catalog.list_media)
    await rpc.serve(runtime.nc, Cache.delete, remove)
    await rpc.serve(runtime.nc, Cache.publish, publish)
    await rpc.serve(runtime.nc, Cache.hold, hold)
    await rpc.serve(runtime.nc, Cache.keys, public_keys)
    await rpc.serve(runtime.nc, Cache.storage_list, storage_list)
    await rpc.serve(runtime.nc, Cache.storage_add, providers.add)
    await rpc.serve(runtime.nc, Cache.storage_get, storage_get)
    await rpc.serve(runtime.nc, Cache.storage_update, providers.update)
    await rpc.serve(runtime.nc, Cache.storage_delete, storage_delete)
    await rpc.serve(runtime.nc, Cache.storage_test, storage_test)
    await rpc.serve(runtime.nc, Cache.storage_type, storage_type)
    runtime.run_consumer(streams.CACHE_RUN_COMPLETIONS, follower.on_message, concurrency=2)
    runtime.run_consumer(streams.CACHE_REPLICATION, replicator.on_message, concurrency=settings.replication_concurrency)
    # A copy whose message never reached the queue (the bus was down when it was made) is queued again.
    sweeper = asyncio.create_task(replicator.sweep(REQUEUE_EVERY_S, runtime.stopping))
    runtime.stack.callback(sweeper.cancel)
