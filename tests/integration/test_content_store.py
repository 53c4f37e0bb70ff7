from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import pytest

from artdag_common.cid import cid_of_bytes
from artdag_common.content_store import LocalContentStore
from artdag_common.content_store.local import CHECKPOINT_EVERY, SMALL_OBJECT_MAX
from artdag_common.errors import InvalidCidError, NotFoundError, PayloadTooLargeError


@pytest.fixture
def store(tmp_path: Path) -> LocalContentStore:
    return LocalContentStore(tmp_path / "cache")


async def _write(store: LocalContentStore, data: bytes, piece: int = 100_000) -> str:
    writer = store.writer()
    for i in range(0, len(data), piece):
        await writer.write(data[i : i + piece])
    return await writer.commit()


async def test_stored_bytes_are_addressed_by_their_cid(store: LocalContentStore) -> None:
    data = os.urandom(700_000)
    cid = await _write(store, data)
    assert cid == cid_of_bytes(data)
    assert await store.exists(cid)
    assert await store.size(cid) == len(data)
    assert b"".join([c async for c in store.read(cid)]) == data
    assert b"".join([c async for c in store.read(cid, 10, 19)]) == data[10:20]
    assert list(store.tmp_dir.iterdir()) == []


async def test_cid_version_one(tmp_path: Path) -> None:
    store = LocalContentStore(tmp_path, cid_version=1)
    assert await _write(store, b"hello world\n") == "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"


async def test_an_oversized_write_leaves_nothing_behind(store: LocalContentStore) -> None:
    writer = store.writer(max_bytes=1000)
    await writer.write(b"x" * 600)
    with pytest.raises(PayloadTooLargeError):
        await writer.write(b"x" * 600)
    assert list(store.tmp_dir.iterdir()) == []
    assert list(store.objects_dir.rglob("Qm*")) == []


async def test_an_aborted_write_is_invisible(store: LocalContentStore) -> None:
    with pytest.raises(RuntimeError):
        async with store.writer() as writer:
            await writer.write(b"partial")
            raise RuntimeError("client went away")
    assert list(store.tmp_dir.iterdir()) == []
    assert not await store.exists(cid_of_bytes(b"partial"))


async def test_concurrent_writers_of_the_same_bytes(store: LocalContentStore) -> None:
    data = os.urandom(300_000)
    cids = await asyncio.gather(*(_write(store, data, piece) for piece in (1000, 50_000, 300_000, 7)))
    assert len(set(cids)) == 1
    assert b"".join([c async for c in store.read(cids[0])]) == data


async def test_unknown_and_hostile_cids(store: LocalContentStore) -> None:
    with pytest.raises(NotFoundError):
        await store.size("QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH")
    with pytest.raises(NotFoundError):
        [c async for c in store.read("QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH")]
    for hostile in ("../../etc/passwd", "/etc/passwd", "Qm/../../x"):
        with pytest.raises(InvalidCidError):
            await store.exists(hostile)


async def test_put_file_copies_and_deletes(store: LocalContentStore, tmp_path: Path) -> None:
    src = tmp_path / "clip.bin"
    src.write_bytes(b"abc" * 1000)
    cid = await store.put_file(src)
    assert src.exists()
    assert (await store.local_path(cid, tmp_path)).read_bytes() == src.read_bytes()
    assert await store.delete(cid)
    assert not await store.delete(cid)


async def test_small_objects_are_rows_and_big_ones_files(store: LocalContentStore) -> None:
    small = b"a plan, a provenance record, a no-op step's output\n"
    big = os.urandom(SMALL_OBJECT_MAX + 1)
    small_cid, big_cid = await store.put_bytes(small), await store.put_bytes(big)
    assert (small_cid, big_cid) == (cid_of_bytes(small), cid_of_bytes(big))
    assert not store.object_path(small_cid).exists(), "no inode for a small object"
    assert store.small.get(small_cid) == small
    assert store.object_path(big_cid).read_bytes() == big
    assert store.small.get(big_cid) is None
    # Streamed in and put from a file, the same split.
    assert await _write(store, small) == small_cid
    exact = store.root / "exact.bin"
    exact.write_bytes(b"x" * SMALL_OBJECT_MAX)
    exact_cid = await store.put_file(exact)
    assert store.small.get(exact_cid) == b"x" * SMALL_OBJECT_MAX and not store.object_path(exact_cid).exists()
    assert sorted(store.cids()) == sorted([small_cid, big_cid, exact_cid])
    assert list(store.tmp_dir.iterdir()) == []


async def test_a_small_object_reads_like_a_file(store: LocalContentStore) -> None:
    data = bytes(range(200))
    cid = await store.put_bytes(data)
    assert await store.exists(cid) and await store.size(cid) == 200
    assert b"".join([c async for c in store.read(cid)]) == data
    assert b"".join([c async for c in store.read(cid, 10, 19)]) == data[10:20]
    assert b"".join([c async for c in store.read(cid, 150)]) == data[150:]
    assert b"".join([c async for c in store.read(cid, 300, 400)]) == b""
    # Media work wants a path: the object is written out as a file, with the same bytes.
    path = await store.local_path(cid, store.root / "scratch")
    assert path == store.object_path(cid) and path.read_bytes() == data
    assert await store.delete(cid)
    assert not await store.exists(cid) and not path.exists()
    assert not await store.delete(cid)
    with pytest.raises(NotFoundError):
        await store.size(cid)
    with pytest.raises(NotFoundError):
        await store.local_path(cid, store.root / "scratch")


async def test_processes_sharing_a_store_see_each_others_small_objects(tmp_path: Path) -> None:
    # Two stores on one root stand for two services: the table is shared through SQLite.
    first, second = LocalContentStore(tmp_path), LocalContentStore(tmp_path)
    cids = await asyncio.gather(*(first.put_bytes(f"object {i}\n".encode()) for i in range(50)))
    assert all([await second.exists(cid) for cid in cids])
    assert await second.delete(cids[0])
    assert not await first.exists(cids[0])
    assert await first.put_bytes(b"object 1\n") == cids[1], "storing it again is harmless"


async def test_a_store_of_files_only_makes_no_table(tmp_path: Path) -> None:
    # A storage provider's directory: people find plain files there.
    store = LocalContentStore(tmp_path, small_object_max=-1)
    cid = await store.put_bytes(b"tiny\n")
    assert store.object_path(cid).read_bytes() == b"tiny\n"
    assert await store.exists(cid) and await store.delete(cid)
    assert not await store.exists(cid)
    assert not (tmp_path / "small.sqlite3").exists()


async def test_a_small_put_does_not_wait_on_the_event_loop_for_another_writer(tmp_path: Path) -> None:
    store = LocalContentStore(tmp_path)
    first = await store.put_bytes(b"opens the table\n")
    assert store.small.try_put(cid_of_bytes(b"now\n"), b"now\n"), "an idle table takes a row at once"
    # Another process holds the write lock: the loop is not blocked, the put waits in a thread.
    other = sqlite3.connect(tmp_path / "small.sqlite3", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    assert not store.small.try_put(cid_of_bytes(b"later\n"), b"later\n")
    putting = asyncio.create_task(store.put_bytes(b"later\n"))
    await asyncio.sleep(0.05)
    assert not putting.done()
    other.execute("COMMIT")
    other.close()
    assert await asyncio.wait_for(putting, 5) == cid_of_bytes(b"later\n")
    # Checkpoints come from the puts themselves, in worker threads: the log does not grow forever.
    for i in range(CHECKPOINT_EVERY + 1):
        await store.put_bytes(f"object {i}\n".encode())
    assert all([await store.exists(cid) for cid in (first, cid_of_bytes(b"now\n"), cid_of_bytes(b"later\n"))])
    # Read past the log (`immutable`): the rows checkpointed into the table file itself.
    table = sqlite3.connect(f"file:{tmp_path / 'small.sqlite3'}?immutable=1", uri=True)
    (in_table,) = table.execute("SELECT count(*) FROM objects").fetchone()
    table.close()
    assert in_table >= CHECKPOINT_EVERY
