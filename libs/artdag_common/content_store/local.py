"""The default content store: sharded directories under `CACHE_DIR`."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import BinaryIO

from artdag_common.cid import CidBuilder, validate_cid
from artdag_common.content_store.base import ContentStore, ContentWriter
from artdag_common.content_store.spool import SpoolWriter, spool_name
from artdag_common.errors import NotFoundError

READ_CHUNK = 1024 * 1024


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
        return SpoolWriter(self.tmp_dir, self.cid_version, max_bytes, self._publish)

    async def _publish(self, spooled: Path, cid: str, size: int) -> None:
        await asyncio.to_thread(self._place, spooled, cid, sync=True)

    def _place(self, staged: Path, cid: str, *, sync: bool) -> None:
        """Make a whole staged file visible as `cid` (durably first: a crash never leaves half an object)."""
        if sync:
            fd = os.open(staged, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        final = self.object_path(cid)
        final.parent.mkdir(parents=True, exist_ok=True)
        # Same cid ⇒ same bytes: a concurrent writer's replace is harmless.
        staged.replace(final)

    async def put_file(self, path: Path) -> str:
        # One thread hop for the whole copy (hash, write, fsync, rename): a step's output is
        # often tiny, and hops, not bytes, would dominate.
        return await asyncio.to_thread(self._put_file_sync, path)

    def _put_file_sync(self, path: Path) -> str:
        def copy(dst: BinaryIO) -> str:
            builder = CidBuilder(self.cid_version)
            with open(path, "rb") as src:
                while chunk := src.read(READ_CHUNK):
                    builder.update(chunk)
                    dst.write(chunk)
            return builder.finalize()

        return self._write_object(copy)

    async def put_bytes(self, data: bytes) -> str:
        # One thread hop: hash, and unless the object is there already, write, fsync, rename.
        return await asyncio.to_thread(self._put_bytes_sync, data)

    def _put_bytes_sync(self, data: bytes) -> str:
        builder = CidBuilder(self.cid_version)
        builder.update(data)
        cid = builder.finalize()
        if self.object_path(cid).is_file():
            return cid  # same cid, same bytes

        def write(dst: BinaryIO) -> str:
            dst.write(data)
            return cid

        return self._write_object(write)

    def _write_object(self, fill: Callable[[BinaryIO], str]) -> str:
        """A new object through a staging file: `fill` writes it and returns its cid; fsync, then rename in."""
        tmp = spool_name(self.tmp_dir, ".part")
        try:
            with open(tmp, "wb") as dst:
                cid = fill(dst)
                dst.flush()
                os.fsync(dst.fileno())
            self._place(tmp, cid, sync=False)
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
