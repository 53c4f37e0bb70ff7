"""Where bytes live, addressed by CID. One interface, several backends.

Every backend computes the CID while the bytes stream in, writes under a temporary
name and publishes the object only when it is whole, so a reader never sees a
partial file and two writers of the same bytes cannot corrupt each other.

`ARTDAG_STORE` picks the backend: `local` (directories under `CACHE_DIR`, the
default), `s3` (`s3.py`), `nats` (a JetStream object-store bucket, `nats.py`) or
`ipfs` (pins on a Kubo node, `ipfs.py`). The remote backends spool through
`spool.py` and are imported only when chosen. `IPFS_PRIMARY=true` puts IPFS first
with the local store as a read-through cache in front (`read_through.py`).
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from artdag_common.content_store.base import ContentStore, ContentWriter
from artdag_common.content_store.local import LocalContentStore
from artdag_common.settings import CommonSettings

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient

__all__ = ["ContentStore", "ContentWriter", "LocalContentStore", "RemoteStore", "open_store", "open_store_async"]


@runtime_checkable
class RemoteStore(Protocol):
    """A store with a connection: `open()` checks it now, `aclose()` releases it."""

    async def open(self) -> None:
        """Connect and check the backend answers (the bucket exists, the node is up)."""

    async def aclose(self) -> None:
        """Release connections; using the store again reopens them."""


def open_store(settings: CommonSettings, *, nc: NatsClient | None = None) -> ContentStore:
    """The content store `settings.store.kind` names; remote clients connect on first use.

    The `nats` backend needs the service's connected client `nc`. Remote stores hold
    connections: close them with `aclose()`, or use `open_store_async`, which also
    checks the backend at start-up.
    """
    spool = settings.spool_dir
    if settings.store.kind == "s3":
        from artdag_common.content_store.s3 import S3ContentStore

        if not settings.store.s3_bucket:
            raise ValueError("ARTDAG_STORE=s3 needs ARTDAG_S3_BUCKET")
        secret = settings.store.s3_secret_access_key
        return S3ContentStore(
            settings.store.s3_bucket,
            spool_dir=spool,
            prefix=settings.store.s3_prefix,
            endpoint_url=settings.store.s3_endpoint_url,
            region=settings.store.s3_region,
            access_key_id=settings.store.s3_access_key_id,
            secret_access_key=secret.get_secret_value() if secret is not None else None,
            cid_version=settings.store.cid_version,
        )
    if settings.store.kind == "nats":
        from artdag_common.content_store.nats import NatsContentStore

        if nc is None:
            raise ValueError("ARTDAG_STORE=nats needs the service's NATS connection: open_store(settings, nc=...)")
        return NatsContentStore(
            nc,
            settings.store.nats_object_bucket,
            spool_dir=spool,
            cid_version=settings.store.cid_version,
            replicas=settings.nats.replicas,
        )
    if settings.store.kind == "ipfs" or settings.store.ipfs_primary:
        from artdag_common.content_store.ipfs import IpfsContentStore

        ipfs = IpfsContentStore(
            settings.store.ipfs_api,
            spool_dir=spool,
            cid_version=settings.store.cid_version,
            timeout_s=settings.store.ipfs_timeout_s,
        )
        if not settings.store.ipfs_primary:
            return ipfs
        # IPFS-primary: every object is added and pinned to IPFS; the local store is a read-through cache.
        from artdag_common.content_store.read_through import ReadThroughStore

        return ReadThroughStore(ipfs, LocalContentStore(settings.store_dir, cid_version=settings.store.cid_version))
    return LocalContentStore(settings.store_dir, cid_version=settings.store.cid_version)


async def open_store_async(
    settings: CommonSettings, stack: AsyncExitStack, *, nc: NatsClient | None = None
) -> ContentStore:
    """Like `open_store`, but check the backend now and close it when `stack` closes.

    For a service's lifespan: `await open_store_async(settings, runtime.stack, nc=runtime.nc)`.
    """
    store = open_store(settings, nc=nc)
    if isinstance(store, RemoteStore):
        stack.push_async_callback(store.aclose)
        await store.open()
    return store
