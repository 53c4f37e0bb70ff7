"""What the remote stores share: a writer that spools to a local file, and verified downloads.

A remote backend cannot rename a half-written object into place the way the local
store does, so its writer streams the bytes into a spool file (computing the CID on
the way), and only `commit` hands the whole file to the backend, which publishes it
in one atomic step (an S3 PUT or multipart completion, a NATS object-store meta
record, an IPFS add + pin). Nothing a writer refuses or aborts ever leaves this
machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import BinaryIO

from artdag_common.cid import CidBuilder
from artdag_common.content_store.base import ContentWriter
from artdag_common.errors import PayloadTooLargeError, RetryableError

READ_CHUNK = 1024 * 1024
"""Bytes a remote read yields (at most) per piece."""

# Writes are gathered into batches this large before a thread hop: uploads stay off the
# event loop without one hop per network packet.
WRITE_BATCH = 1024 * 1024

Publish = Callable[[Path, str, int], Awaitable[None]]
"""How a backend publishes a whole spool file: `(path, cid, size)`."""


def cid_version_of(cid: str) -> int:
    """The version of a validated CID: `Qm…` is v0, anything else (`b…`) v1."""
    return 0 if cid.startswith("Qm") else 1


def spool_name(spool_dir: Path, suffix: str) -> Path:
    """A fresh file name in `spool_dir` that no other writer or download uses."""
    return spool_dir / f"{uuid.uuid4().hex}{suffix}"


class SpoolWriter(ContentWriter):
    """Spools written bytes to a local file and computes their CID; `commit` publishes the file.

    The spool file is removed whatever happens: after a successful publish, after a
    failed one, on `abort` and when `max_bytes` is exceeded.
    """

    def __init__(self, spool_dir: Path, cid_version: int, max_bytes: int | None, publish: Publish) -> None:
        """Open a spool file in `spool_dir`; `publish` is called by `commit`."""
        spool_dir.mkdir(parents=True, exist_ok=True)
        self._path = spool_name(spool_dir, ".spool")
        self._file: BinaryIO = open(self._path, "wb")  # noqa: SIM115 - closed in commit/abort
        self._builder = CidBuilder(cid_version)
        self._max_bytes = max_bytes
        self._publish = publish
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._size = 0
        self._closed = False

    @property
    def size(self) -> int:
        """Bytes written so far."""
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
        """Append bytes; raises `PayloadTooLargeError` (and aborts) past the limit."""
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

    def _close_sync(self) -> str:
        self._file.close()
        return self._builder.finalize()

    async def commit(self) -> str:
        """Hand the whole spool file to the backend and return its CID."""
        if self._closed:
            raise RuntimeError("commit after commit/abort")
        try:
            await self._flush()
            self._closed = True
            cid = await asyncio.to_thread(self._close_sync)
            await self._publish(self._path, cid, self._size)
            return cid
        finally:
            self._closed = True
            self._file.close()
            self._path.unlink(missing_ok=True)

    async def abort(self) -> None:
        """Drop the spool file; nothing was sent anywhere."""
        if self._closed:
            return
        self._closed = True
        self._file.close()
        self._path.unlink(missing_ok=True)


async def spool_file(path: Path, writer: ContentWriter) -> str:
    """Copy a local file into `writer` and commit it (the remote stores' `put_file`)."""
    try:
        with open(path, "rb") as src:
            while chunk := await asyncio.to_thread(src.read, READ_CHUNK):
                await writer.write(chunk)
        return await writer.commit()
    except BaseException:
        await writer.abort()
        raise


async def fetch_verified(cid: str, chunks: AsyncIterator[bytes], scratch: Path) -> Path:
    """Stream `chunks` into `scratch/<cid>`, checking that they hash back to `cid`.

    The bytes land under a temporary name and are renamed into place only once
    their CID matches, so a reader never sees a partial or corrupt file; the file is
    made read-only. A mismatch (the backend returned something else) is a
    `RetryableError`: another fetch may well succeed.
    """
    scratch.mkdir(parents=True, exist_ok=True)
    final = scratch / cid
    tmp = spool_name(scratch, f".{cid}.part")
    builder = CidBuilder(cid_version_of(cid))

    def append(handle: BinaryIO, data: bytes) -> None:
        builder.update(data)
        handle.write(data)

    try:
        with open(tmp, "wb") as handle:
            pending: list[bytes] = []
            pending_size = 0
            async for chunk in chunks:
                pending.append(chunk)
                pending_size += len(chunk)
                if pending_size >= WRITE_BATCH:
                    await asyncio.to_thread(append, handle, b"".join(pending))
                    pending.clear()
                    pending_size = 0
            if pending:
                await asyncio.to_thread(append, handle, b"".join(pending))
        got = builder.finalize()
        if got != cid:
            raise RetryableError(f"fetched bytes hash to {got}, not {cid}", field="cid")
        tmp.chmod(0o444)
        await asyncio.to_thread(tmp.replace, final)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return final


async def cached_fetch(cid: str, size: int, scratch: Path) -> Path | None:
    """`scratch/<cid>` if an earlier `fetch_verified` left it there whole, else None."""
    final = scratch / cid
    try:
        stat = await asyncio.to_thread(final.stat)
    except FileNotFoundError:
        return None
    return final if stat.st_size == size else None
