"""Content the local store has given up to a storage provider (or never had, on a fresh node) is read
back by the cache service, which alone holds the providers' credentials: readers ask it here."""

from __future__ import annotations

from pathlib import Path

from nats.aio.client import Client as NatsClient

from artdag_common import rpc
from artdag_common.content_store import ContentStore
from artdag_common.contracts import Cache
from artdag_common.errors import NotFoundError
from artdag_common.schemas import CidRequest

# A read-back streams the whole file from the provider: far longer than an ordinary request.
RESTORE_TIMEOUT_S = 600.0


async def restore(nc: NatsClient, cid: str, timeout_s: float = RESTORE_TIMEOUT_S) -> None:
    """Have the cache service put `cid` back into the content store; `NotFoundError` if no provider has it."""
    await rpc.call(nc, Cache.restore, CidRequest(cid=cid), timeout_s=timeout_s)


async def local_path_restoring(nc: NatsClient, store: ContentStore, cid: str, scratch: Path) -> Path:
    """`store.local_path(cid)`, reading the content back from a provider first if the store lacks it."""
    try:
        return await store.local_path(cid, scratch)
    except NotFoundError:
        await restore(nc, cid)
    return await store.local_path(cid, scratch)
