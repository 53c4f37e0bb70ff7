"""The content-store interface every backend implements."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType

from artdag_common.errors import PayloadTooLargeError


class ContentWriter(abc.ABC):
    """Streams bytes in; `commit()` publishes them under their CID, `abort()` drops them."""

    @abc.abstractmethod
    async def write(self, data: bytes) -> None:
        """Append bytes; raises `PayloadTooLargeError` past the writer's limit."""

    @abc.abstractmethod
    async def commit(self) -> str:
        """Publish the object atomically and return its CID."""

    @abc.abstractmethod
    async def abort(self) -> None:
        """Discard everything written; nothing becomes visible."""

    @property
    @abc.abstractmethod
    def size(self) -> int:
        """Bytes written so far."""

    async def __aenter__(self) -> ContentWriter:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            await self.abort()


class ContentStore(abc.ABC):
    """Bytes by CID: stream in, stream out (with ranges), materialise for media work."""

    cid_version: int

    @abc.abstractmethod
    def writer(self, *, max_bytes: int | None = None) -> ContentWriter:
        """A writer for new content, refusing more than `max_bytes`."""

    @abc.abstractmethod
    async def put_file(self, path: Path) -> str:
        """Store a file (copying it) and return its CID."""

    async def put_bytes(self, data: bytes) -> str:
        """Store a small object held in memory and return its CID."""
        async with self.writer() as writer:
            await writer.write(data)
            return await writer.commit()

    async def get_bytes(self, cid: str, *, max_bytes: int | None = None) -> bytes:
        """A small object's bytes, in memory (what `put_bytes` stored); `NotFoundError` if absent,
        `PayloadTooLargeError` past `max_bytes` (checked as it streams in)."""
        chunks: list[bytes] = []
        size = 0
        async for chunk in self.read(cid):
            size += len(chunk)
            if max_bytes is not None and size > max_bytes:
                raise PayloadTooLargeError(f"{cid} is over {max_bytes:,} bytes", field="cid")
            chunks.append(chunk)
        return b"".join(chunks)

    @abc.abstractmethod
    async def exists(self, cid: str) -> bool:
        """Whether the object is stored."""

    @abc.abstractmethod
    async def size(self, cid: str) -> int:
        """The object's size in bytes; `NotFoundError` if absent."""

    @abc.abstractmethod
    def read(self, cid: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Stream bytes `start`..`end` (inclusive end, HTTP-style); `NotFoundError` if absent."""

    @abc.abstractmethod
    async def local_path(self, cid: str, scratch: Path) -> Path:
        """A local, read-only path holding the object (fetched into `scratch` if remote)."""

    @abc.abstractmethod
    async def delete(self, cid: str) -> bool:
        """Remove the object; False if it was not there."""
