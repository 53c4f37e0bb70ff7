"""Objects in a JetStream object-store bucket, named by their CID, via nats-py.

Writes spool to a local file while the CID is computed; `commit` then streams the
file into the bucket with `ObjectStore.put`, which sends the chunks first and the
meta record last: an object exists for readers only once its meta record does, so a
partial upload is never visible (nats-py purges the chunks of a failed put).

Two writers of the same bytes in one process are serialised and the second finds
the object already there. Across processes the window between "absent?" and
"meta published" is not locked: the later meta record wins and the earlier
upload's chunks stay behind unreferenced (wasted space, never a wrong byte).

Ranged reads walk the object's chunk messages one at a time with the stream's
"next message on this subject" lookup: memory holds one chunk, the reader sets the
pace, and nothing is spooled to disk; the chunks before `start` still cross the
wire (JetStream keeps no index from byte offset to message). `local_path` streams
the same walk into a scratch file and checks the CID of what arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.js import api
from nats.js.object_store import ObjectStore

from artdag_common.cid import validate_cid
from artdag_common.content_store.base import ContentStore, ContentWriter
from artdag_common.content_store.spool import (
    SpoolWriter,
    cached_fetch,
    fetch_verified,
    spool_file,
)
from artdag_common.errors import NotFoundError, RetryableError
from artdag_common.streams import raise_replicas

CHUNK_SIZE = 256 * 1024
"""Bytes per chunk message: well under the server's default 1 MiB max_payload."""

_STREAM_TEMPLATE = "OBJ_{bucket}"
_CHUNK_SUBJECT_TEMPLATE = "$O.{bucket}.C.{nuid}"


@contextlib.contextmanager
def _mapped_errors(what: str) -> Iterator[None]:
    """Bus trouble (timeouts, a lost connection, a busy server) is retryable."""
    try:
        yield
    except (nats.errors.TimeoutError, nats.errors.ConnectionClosedError, nats.errors.NoRespondersError) as exc:
        raise RetryableError(f"NATS object store {what}: {type(exc).__name__}") from exc
    except nats.js.errors.ServiceUnavailableError as exc:
        raise RetryableError(f"NATS object store {what}: JetStream unavailable") from exc


class NatsContentStore(ContentStore):
    """Content in the JetStream object-store `bucket` (created if missing), one object per CID."""

    def __init__(
        self,
        nc: NatsClient,
        bucket: str,
        *,
        spool_dir: Path,
        cid_version: int = 0,
        chunk_size: int = CHUNK_SIZE,
        description: str = "artdag content, by CID",
        replicas: int = 1,
    ) -> None:
        """Use the connected client `nc`; the bucket is looked up (or created) on first use.

        `replicas`: JetStream servers that hold the bucket (an existing one is raised to it).
        """
        self.nc = nc
        self.replicas = replicas
        self.bucket = bucket
        self.spool_dir = spool_dir
        self.cid_version = cid_version
        self.chunk_size = chunk_size
        self._description = description
        self._js = nc.jetstream()
        self._obs: ObjectStore | None = None
        self._open_lock = asyncio.Lock()
        self._cid_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @property
    def stream(self) -> str:
        """The JetStream stream behind the bucket."""
        return _STREAM_TEMPLATE.format(bucket=self.bucket)

    async def _store(self) -> ObjectStore:
        if self._obs is None:
            async with self._open_lock:
                if self._obs is None:
                    with _mapped_errors(f"bucket {self.bucket!r}"):
                        try:
                            self._obs = await self._js.object_store(self.bucket)
                            await raise_replicas(self._js, self.stream, self.replicas)
                        except nats.js.errors.BucketNotFoundError:
                            config = api.ObjectStoreConfig(description=self._description, replicas=self.replicas)
                            self._obs = await self._js.create_object_store(self.bucket, config)
        return self._obs

    async def open(self) -> None:
        """Find or create the bucket now (fail fast at start-up)."""
        await self._store()

    async def aclose(self) -> None:
        """Nothing to release: the NATS connection belongs to the caller."""
        self._obs = None

    # -- writing ----------------------------------------------------------------

    def writer(self, *, max_bytes: int | None = None) -> ContentWriter:
        return SpoolWriter(self.spool_dir, self.cid_version, max_bytes, self._publish)

    async def put_file(self, path: Path) -> str:
        return await spool_file(path, self.writer())

    async def _publish(self, path: Path, cid: str, size: int) -> None:
        lock = self._cid_locks.setdefault(cid, asyncio.Lock())
        async with lock:
            if await self.exists(cid):
                return
            obs = await self._store()
            meta = api.ObjectMeta(name=cid, options=api.ObjectMetaOptions(max_chunk_size=self.chunk_size))
            with open(path, "rb") as source, _mapped_errors(f"put {cid}"):
                await obs.put(cid, source, meta=meta)

    # -- reading ----------------------------------------------------------------

    async def _info(self, cid: str) -> api.ObjectInfo:
        validate_cid(cid)
        obs = await self._store()
        with _mapped_errors(f"info {cid}"):
            try:
                return await obs.get_info(cid)
            except nats.js.errors.ObjectNotFoundError as exc:
                raise NotFoundError(f"no content {cid}", field="cid") from exc

    async def exists(self, cid: str) -> bool:
        try:
            await self._info(cid)
        except NotFoundError:
            return False
        return True

    async def size(self, cid: str) -> int:
        return (await self._info(cid)).size or 0

    async def read(self, cid: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        info = await self._info(cid)
        size = info.size or 0
        stop = size - 1 if end is None else min(end, size - 1)  # last byte wanted
        start = max(start, 0)
        if start > stop:
            return
        subject = _CHUNK_SUBJECT_TEMPLATE.format(bucket=self.bucket, nuid=info.nuid)
        seq, pos = 1, 0  # next stream sequence to look from; object offset of the next chunk
        while pos <= stop:
            with _mapped_errors(f"read {cid}"):
                try:
                    msg = await self._js.get_msg(self.stream, seq=seq, subject=subject, next=True)
                except nats.js.errors.NotFoundError as exc:
                    # The object was deleted (its chunks purged) while we read it.
                    raise NotFoundError(f"no content {cid} (deleted while reading)", field="cid") from exc
            data = msg.data or b""
            if not data:
                raise RetryableError(f"empty chunk in {cid} at offset {pos}")
            seq = (msg.seq or seq) + 1
            chunk_end = pos + len(data)
            if chunk_end > start:
                yield data[max(start - pos, 0) : stop + 1 - pos]
            pos = chunk_end

    async def local_path(self, cid: str, scratch: Path) -> Path:
        info = await self._info(cid)
        cached = await cached_fetch(cid, info.size or 0, scratch)
        if cached is not None:
            return cached
        # Not `ObjectStore.get(writeinto=…)`: its push consumer queues chunks as fast as the
        # server sends them, so when the disk lags its memory grows with the object (measured:
        # 19 MB traced for an 80 MiB object). The chunk walk holds one chunk, and the CID check
        # covers what get()'s SHA-256 check would.
        return await fetch_verified(cid, self.read(cid), scratch)

    async def delete(self, cid: str) -> bool:
        validate_cid(cid)
        obs = await self._store()
        with _mapped_errors(f"delete {cid}"):
            try:
                await obs.delete(cid)
            except nats.js.errors.ObjectNotFoundError:
                return False
        return True
