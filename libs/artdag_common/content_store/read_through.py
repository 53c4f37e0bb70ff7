"""IPFS-primary mode: IPFS holds every object; a local store in front of it is a read-through cache.

Writes go to both (the bytes stream once, teed); reads are served locally when the
object is there, else fetched from the primary (which verifies the CID) and kept.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from artdag_common.content_store.base import ContentStore, ContentWriter
from artdag_common.content_store.local import LocalContentStore
from artdag_common.errors import NotFoundError, RetryableError


class _TeeWriter(ContentWriter):
    def __init__(self, primary: ContentWriter, cache: ContentWriter) -> None:
        self._primary = primary
        self._cache = cache

    @property
    def size(self) -> int:
        return self._primary.size

    async def write(self, data: bytes) -> None:
        try:
            await self._primary.write(data)
            await self._cache.write(data)
        except BaseException:
            await self.abort()
            raise

    async def commit(self) -> str:
        try:
            cid = await self._primary.commit()
        except BaseException:
            await self._cache.abort()
            raise
        cached = await self._cache.commit()
        if cached != cid:  # pragma: no cover - both compute the same CID over the same bytes
            raise RetryableError(f"primary store says {cid}, local cache {cached}", field="cid")
        return cid

    async def abort(self) -> None:
        await self._primary.abort()
        await self._cache.abort()


class ReadThroughStore(ContentStore):
    """`primary` is authoritative (IPFS); `cache` keeps local copies of what was written or read."""

    def __init__(self, primary: ContentStore, cache: LocalContentStore) -> None:
        self.primary = primary
        self.cache = cache
        self.cid_version = primary.cid_version

    async def open(self) -> None:
        """Check the primary answers (see `artdag_common.content_store.RemoteStore`)."""
        opener = getattr(self.primary, "open", None)
        if opener is not None:
            await opener()

    async def aclose(self) -> None:
        """Release the primary's connections."""
        closer = getattr(self.primary, "aclose", None)
        if closer is not None:
            await closer()

    def writer(self, *, max_bytes: int | None = None) -> ContentWriter:
        return _TeeWriter(self.primary.writer(max_bytes=max_bytes), self.cache.writer(max_bytes=max_bytes))

    async def put_file(self, path: Path) -> str:
        cid = await self.primary.put_file(path)
        await self.cache.put_file(path)
        return cid

    async def exists(self, cid: str) -> bool:
        return await self.cache.exists(cid) or await self.primary.exists(cid)

    async def size(self, cid: str) -> int:
        if await self.cache.exists(cid):
            return await self.cache.size(cid)
        return await self.primary.size(cid)

    async def read(self, cid: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        store: ContentStore = self.cache if await self.cache.exists(cid) else self.primary
        async for chunk in store.read(cid, start, end):
            yield chunk

    async def local_path(self, cid: str, scratch: Path) -> Path:
        if await self.cache.exists(cid):
            return await self.cache.local_path(cid, scratch)
        fetched = await self.primary.local_path(cid, scratch)  # verified against the CID
        try:
            kept = await self.cache.put_file(fetched)
        finally:
            fetched.unlink(missing_ok=True)
        if kept != cid:  # pragma: no cover - the primary verified it
            raise NotFoundError(f"fetched bytes are not {cid}", field="cid")
        return await self.cache.local_path(cid, scratch)

    async def delete(self, cid: str) -> bool:
        in_cache = await self.cache.delete(cid)
        in_primary = await self.primary.delete(cid)
        return in_cache or in_primary
