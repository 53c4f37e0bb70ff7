"""What the replicator does at a storage provider: store a copy, read it back, remove it, each verified.

A provider is reached through a `Replica`. Providers that hold bytes (S3, a local directory,
a NATS object store, an IPFS node) are a `StoreReplica` over their `ContentStore`; a pinning
service is a `PinningReplica` (provider_pinning.py), which holds nothing itself but asks the
service to pin a CID whose bytes an IPFS node provides.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from artdag_common.cid import CidBuilder
from artdag_common.content_store import ContentStore
from artdag_common.errors import NotFoundError, RetryableError

COPY_CHUNK = 1 << 20


class CopyMismatchError(RetryableError):
    """The bytes at a provider do not hash to the CID they were stored under."""


def cid_version_of(cid: str) -> int:
    """0 for a base58 `Qm…` CID, else 1: a copy is hashed the way its CID was made."""
    return 0 if cid.startswith("Qm") else 1


async def copy_verified(source: ContentStore, target: ContentStore, cid: str) -> int:
    """Stream `cid` from `source` into `target`; the bytes written must hash to `cid`. Bytes copied."""
    writer = target.writer()
    async with writer:
        async for chunk in source.read(cid):
            await writer.write(chunk)
        written = await writer.commit()
    if written != cid:
        await target.delete(written)
        raise CopyMismatchError(f"the bytes read for {cid} hash to {written}", field="cid")
    return writer.size


async def hash_of(store: ContentStore, cid: str) -> str:
    """The CID of the bytes `store` gives back for `cid`, computed here as they stream in."""
    builder = CidBuilder(cid_version_of(cid))
    async for chunk in store.read(cid):
        builder.update(chunk)
    return builder.finalize()


class Replica(Protocol):
    """One storage provider as the replicator uses it."""

    async def store(self, cid: str, source: ContentStore) -> str | None:
        """Put `cid` (read from `source`) at the provider and check what is there hashes to `cid`.

        Returns the provider's own reference to the copy (a pin request id), or None.
        Idempotent: storing what is there already only checks it.
        """
        ...

    async def fetch(self, cid: str, into: ContentStore, ref: str | None) -> None:
        """Write the provider's copy of `cid` into `into`, verified against `cid`; `NotFoundError` if absent."""
        ...

    async def remove(self, cid: str, ref: str | None) -> None:
        """Delete the copy (unpin); removing what is not there is no error."""
        ...


class StoreReplica:
    """A provider that holds bytes in a `ContentStore` of its own."""

    def __init__(self, store: ContentStore) -> None:
        self.target = store

    async def store(self, cid: str, source: ContentStore) -> str | None:
        if not await self.target.exists(cid):
            await copy_verified(source, self.target, cid)
        # Read back what the provider now holds, not what was sent: the copy is what a read-back will get.
        held = await hash_of(self.target, cid)
        if held != cid:
            await self.target.delete(cid)
            raise CopyMismatchError(f"the provider's copy of {cid} hashes to {held}", field="cid")
        return None

    async def fetch(self, cid: str, into: ContentStore, ref: str | None) -> None:
        if not await self.target.exists(cid):
            raise NotFoundError(f"the provider has no copy of {cid}", field="cid")
        await copy_verified(self.target, into, cid)

    async def remove(self, cid: str, ref: str | None) -> None:
        await self.target.delete(cid)


def scratch_for(spool: Path, name: str) -> Path:
    """A spool directory of its own for one provider's transfers."""
    path = spool / "replication" / name
    path.mkdir(parents=True, exist_ok=True)
    return path
