"""The default content store: sharded directories under `CACHE_DIR`, small objects in SQLite.

A new file costs the kernel an inode, and on some file systems that is most of a
millisecond of CPU (0.5–0.9 ms measured on this project's ext4 VMs, against 20 µs for
a row in a table): a run of a thousand tiny outputs (plans, provenance records, no-op
steps) spent more time creating files than doing anything else. Objects of at most
`SMALL_OBJECT_MAX` bytes are therefore rows of `<root>/small.sqlite3` (WAL, one
statement per object, whole or absent); bigger ones are files, written through a
staging file, fsync'd and renamed in. A small object asked for as a path (media work
reads files) is written out as a file then.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from artdag_common.cid import CidBuilder, validate_cid
from artdag_common.content_store.base import ContentStore, ContentWriter
from artdag_common.content_store.spool import SpoolWriter, spool_name
from artdag_common.errors import NotFoundError
from artdag_common.sqlite_busy import is_busy, retry_while_busy

READ_CHUNK = 1024 * 1024
# Objects up to this size are rows, not files (a plan, a provenance record, an analysis).
SMALL_OBJECT_MAX = 64 * 1024
SMALL_DB = "small.sqlite3"
# Every this many rows written by a store, a checkpoint moves the write-ahead log into the table.
CHECKPOINT_EVERY = 256
# Objects this small are hashed and inserted on the caller's event loop (tens of microseconds,
# less than handing them to a thread), unless that would mean waiting.
PUT_NOW_MAX = 4096


class SmallObjects:
    """The `objects` table of one SQLite file, shared by every process using the store.

    One connection per store, used from worker threads under a lock. WAL with
    synchronous=NORMAL, like the embedded catalog: a commit is never torn, and a power
    cut may lose the last commits (a result whose bytes are gone is rendered again).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._puts = 0

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            # No busy timeout: `_run` waits out other writers itself (see `sqlite_busy`).
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=0.0)
            self._db = db
            self._run("PRAGMA journal_mode=WAL")
            self._run("PRAGMA synchronous=NORMAL")
            # No checkpoint inside a commit (it may take milliseconds; `put` makes them instead).
            self._run("PRAGMA wal_autocheckpoint=0")
            self._run("CREATE TABLE IF NOT EXISTS objects (cid TEXT PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID")
        return self._db

    def _run(self, sql: str, args: tuple[object, ...] = ()) -> sqlite3.Cursor:
        """Execute `sql`, trying again while another process writes (see `retry_while_busy`)."""
        db = self._db
        assert db is not None
        return retry_while_busy(lambda: db.execute(sql, args), sqlite3.OperationalError)

    def put(self, cid: str, data: bytes) -> None:
        with self._lock:
            self._connection()
            self._run("INSERT OR IGNORE INTO objects (cid, data) VALUES (?, ?)", (cid, data))
            self._puts += 1
            if self._puts % CHECKPOINT_EVERY == 0:
                # Connections make no checkpoints of their own (see `try_put`): this one, in a worker thread.
                self._run("PRAGMA wal_checkpoint(PASSIVE)")

    def try_put(self, cid: str, data: bytes) -> bool:
        """Insert without waiting for anything (the caller's thread is an event loop's): False if that
        would mean waiting (the connection in use, another process writing, not open yet, a checkpoint due)."""
        if self._db is None or (self._puts + 1) % CHECKPOINT_EVERY == 0 or not self._lock.acquire(blocking=False):
            return False
        try:
            self._db.execute("INSERT OR IGNORE INTO objects (cid, data) VALUES (?, ?)", (cid, data))
            self._puts += 1
            return True
        except sqlite3.OperationalError as exc:
            if is_busy(exc):
                return False
            raise
        finally:
            self._lock.release()

    def get(self, cid: str) -> bytes | None:
        with self._lock:
            self._connection()
            row = self._run("SELECT data FROM objects WHERE cid = ?", (cid,)).fetchone()
        return None if row is None else bytes(row[0])

    def size(self, cid: str) -> int | None:
        with self._lock:
            self._connection()
            row = self._run("SELECT length(data) FROM objects WHERE cid = ?", (cid,)).fetchone()
        return None if row is None else int(row[0])

    def delete(self, cid: str) -> bool:
        with self._lock:
            self._connection()
            return self._run("DELETE FROM objects WHERE cid = ?", (cid,)).rowcount > 0

    def cids(self) -> list[str]:
        with self._lock:
            self._connection()
            return [row[0] for row in self._run("SELECT cid FROM objects ORDER BY cid")]

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


class LocalContentStore(ContentStore):
    """Objects at `<root>/objects/<shard>/<cid>` (staged in `<root>/tmp`) or, when small, in `<root>/small.sqlite3`."""

    def __init__(self, root: Path, *, cid_version: int = 0, small_object_max: int = SMALL_OBJECT_MAX) -> None:
        """`small_object_max=-1`: every object a file (a directory people browse, a storage provider's)."""
        self.root = root
        self.cid_version = cid_version
        self.small_object_max = small_object_max
        self.objects_dir = root / "objects"
        self.tmp_dir = root / "tmp"
        self.objects_dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.small = SmallObjects(root / SMALL_DB)

    def object_path(self, cid: str) -> Path:
        # validate_cid guarantees no path separators: the path stays under objects/.
        cid = validate_cid(cid)
        return self.objects_dir / cid[-3:-1] / cid

    def writer(self, *, max_bytes: int | None = None) -> ContentWriter:
        return SpoolWriter(self.tmp_dir, self.cid_version, max_bytes, self._publish)

    async def _publish(self, spooled: Path, cid: str, size: int) -> None:
        await asyncio.to_thread(self._publish_sync, spooled, cid, size)

    def _publish_sync(self, spooled: Path, cid: str, size: int) -> None:
        if size <= self.small_object_max:
            self.small.put(cid, spooled.read_bytes())  # the writer removes its spool file
        else:
            self._place(spooled, cid, sync=True)

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
        if path.stat().st_size <= self.small_object_max:
            return self._put_bytes_sync(path.read_bytes())

        def copy(dst: BinaryIO) -> str:
            builder = CidBuilder(self.cid_version)
            with open(path, "rb") as src:
                while chunk := src.read(READ_CHUNK):
                    builder.update(chunk)
                    dst.write(chunk)
            return builder.finalize()

        return self._write_object(copy)

    async def put_bytes(self, data: bytes) -> str:
        if len(data) <= min(PUT_NOW_MAX, self.small_object_max):
            builder = CidBuilder(self.cid_version)
            builder.update(data)
            cid = builder.finalize()
            if self.small.try_put(cid, data):
                return cid
        # One thread hop: hash, then a row (small) or a file (write, fsync, rename).
        return await asyncio.to_thread(self._put_bytes_sync, data)

    def _put_bytes_sync(self, data: bytes) -> str:
        builder = CidBuilder(self.cid_version)
        builder.update(data)
        cid = builder.finalize()
        if len(data) <= self.small_object_max:
            self.small.put(cid, data)
            return cid
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

    def _size_sync(self, cid: str) -> int | None:
        try:
            return self.object_path(cid).stat().st_size
        except FileNotFoundError:
            return self.small.size(validate_cid(cid)) if self._has_small else None

    @property
    def _has_small(self) -> bool:
        """Whether small objects may be rows here (a store of files only never makes the table)."""
        return self.small_object_max >= 0 or self.small.path.exists()

    async def exists(self, cid: str) -> bool:
        return await asyncio.to_thread(self._size_sync, cid) is not None

    async def size(self, cid: str) -> int:
        size = await asyncio.to_thread(self._size_sync, cid)
        if size is None:
            raise NotFoundError(f"no content {cid}", field="cid")
        return size

    async def read(self, cid: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        path = self.object_path(cid)
        try:
            handle = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError as exc:
            data = await asyncio.to_thread(self.small.get, cid) if self._has_small else None
            if data is None:
                raise NotFoundError(f"no content {cid}", field="cid") from exc
            piece = data[start : None if end is None else end + 1]
            if piece:
                yield piece
            return
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
        return await asyncio.to_thread(self._local_path_sync, cid)

    def _local_path_sync(self, cid: str) -> Path:
        path = self.object_path(cid)
        if path.is_file():
            return path
        data = self.small.get(cid) if self._has_small else None
        if data is None:
            raise NotFoundError(f"no content {cid}", field="cid")

        # Media work reads files: a small object asked for as a path is written out as one.
        def write(dst: BinaryIO) -> str:
            dst.write(data)
            return cid

        self._write_object(write)
        return path

    async def delete(self, cid: str) -> bool:
        return await asyncio.to_thread(self._delete_sync, cid)

    def _delete_sync(self, cid: str) -> bool:
        path = self.object_path(cid)
        try:
            path.unlink()
            had_file = True
        except FileNotFoundError:
            had_file = False
        return (self._has_small and self.small.delete(cid)) or had_file

    def cids(self) -> Iterator[str]:
        """Every stored cid (files, then rows); for checks and tools, not the request path."""
        for path in sorted(self.objects_dir.rglob("*")):
            if path.is_file():
                yield path.name
        if self._has_small:
            yield from self.small.cids()
