"""The default content store: sharded directories under `CACHE_DIR`."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from artdag_common.cid import CidBuilder, validate_cid
from artdag_common.content_store.base import ContentStore, ContentWriter
from artdag_common.errors import NotFoundError, PayloadTooLargeError

READ_CHUNK = 1024 * 1024
# Writes are gathered into batches this large before a thread hop, so that
# uploads stay off the event loop without one hop per network packet.
WRITE_BATCH = 1024 * 1024


class _LocalWriter(ContentWriter):
    def __init__(self, store: LocalContentStore, max_bytes: int | None) -> None:
        self._store = store
        self._max_bytes = max_bytes
        self._tmp = store.tmp_dir / f"{uuid.uuid4().hex}.part"
        self._file = open(self._tmp, "wb")  # noqa: SIM115 - closed in commit/abort
        self._builder = CidBuilder(store.cid_version)
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._size = 0
        self._closed = False

    @property
    def size(self) -> int:
        return self._size

    def _flush_sync(self, batch: bytes) -> None:
        self._builder.update(batch)
        self._file.write(batch)

    async def _flush(self) -> None:
        if self._pending:
            batch = b"".join(self._pending)
            self._pending.clear()
            self._pending_size = 0
            await asyncio.to_thread(self._flush_sync, batch)

    async def write(self, data: bytes) -> None:
        if self._closed:
            raise RuntimeError("write after commit/abort")
        self._size += len(data)
        if self._max_bytes is not None and self._size > self._max_bytes:
            await self.abort()
            raise PayloadTooLargeError(f"more than the limit of {self._max_bytes} bytes")
        self._pending.append(data)
        self._pending_size += len(data)
        if self._pending_size >= WRITE_BATCH:
            await self._flush()

    def _publish_sync(self) -> str:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        cid = self._builder.finalize()
        final = self._store.object_path(cid)
        final.parent.mkdir(parents=True, exist_ok=True)
        # Same cid ⇒ same bytes: a concurrent writer's replace is harmless.
        self._tmp.replace(final)
        return cid

    async def commit(self) -> str:
        if self._closed:
            raise RuntimeError("commit after commit/abort")
        await self._flush()
        self._closed = True
        return await asyncio.to_thread(self._publish_sync)

    async def abort(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._file.close()
        self._tmp.unlink(missing_ok=True)


class LocalContentStore(ContentStore):
    """Objects at `<root>/objects/<shard>/<cid>`, staged in `<root>/tmp`."""

    def __init__(self, root: Path, *, cid_version: int = 0) -> None:
        self.root = root
        self.cid_version = cid_version
        self.objects_dir = root / "objects"
        self.tmp_dir = root / "tmp"
        self.objects_dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def object_path(self, cid: str) -> Path:
        # validate_cid guarantees no path separators: the path stays under objects/.
        cid = validate_cid(cid)
        return self.objects_dir / cid[-3:-1] / cid

    def writer(self, *, max_bytes: int | None = None) -> ContentWriter:
        return _LocalWriter(self, max_bytes)

    async def put_file(self, path: Path) -> str:
        # One thread hop for the whole copy (hash, write, fsync, rename): a step's output is
        # often tiny, and hops, not bytes, would dominate.
        return await asyncio.to_thread(self._put_file_sync, path)

    def _put_file_sync(self, path: Path) -> str:
        tmp = self.tmp_dir / f"{uuid.uuid4().hex}.part"
        builder = CidBuilder(self.cid_version)
        try:
            with open(path, "rb") as src, open(tmp, "wb") as dst:
                while chunk := src.read(READ_CHUNK):
                    builder.update(chunk)
                    dst.write(chunk)
                dst.flush()
                os.fsync(dst.fileno())
            cid = builder.finalize()
            final = self.object_path(cid)
            final.parent.mkdir(parents=True, exist_ok=True)
            # Same cid ⇒ same bytes: a concurrent writer's replace is harmless.
            tmp.replace(final)
            return cid
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    async def exists(self, cid: str) -> bool:
        return await asyncio.to_thread(self.object_path(cid).is_file)

    async def size(self, cid: str) -> int:
        try:
            return (await asyncio.to_thread(self.object_path(cid).stat)).st_size
        except FileNotFoundError as exc:
            raise NotFoundError(f"no content {cid}", field="cid") from exc

    async def read(self, cid: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        path = self.object_path(cid)
        try:
            handle = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError as exc:
            raise NotFoundError(f"no content {cid}", field="cid") from exc
        try:
            await asyncio.to_thread(handle.seek, start)
            remaining = None if end is None else end - start + 1
            while remaining is None or remaining > 0:
                want = READ_CHUNK if remaining is None else min(READ_CHUNK, remaining)
                chunk = await asyncio.to_thread(handle.read, want)
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            handle.close()

    async def local_path(self, cid: str, scratch: Path) -> Path:
        path = self.object_path(cid)
        if not await asyncio.to_thread(path.is_file):
            raise NotFoundError(f"no content {cid}", field="cid")
        return path

    async def delete(self, cid: str) -> bool:
        path = self.object_path(cid)
        try:
            await asyncio.to_thread(path.unlink)
        except FileNotFoundError:
            return False
        return True
