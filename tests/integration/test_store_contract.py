"""One contract, every content-store backend: local, S3 (moto), NATS object store, IPFS (js-ipfs).

Each test gets a fresh store: its own directory, S3 prefix or NATS bucket. IPFS
has one namespace per node, so every test stores random bytes of its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from artdag_common.bus import connect
from artdag_common.cid import cid_of_bytes, cid_of_file
from artdag_common.content_store import ContentStore, LocalContentStore
from artdag_common.content_store.ipfs import IpfsContentStore
from artdag_common.content_store.nats import NatsContentStore
from artdag_common.content_store.s3 import S3ContentStore
from artdag_common.errors import InvalidCidError, NotFoundError, PayloadTooLargeError
from artdag_dev.testing import moto_s3_server, unique

BACKENDS = ["local", "s3", "nats", "ipfs"]
S3_BUCKET = "artdag-test"
S3_CREDENTIALS: dict[str, Any] = {"access_key_id": "testing", "secret_access_key": "testing", "region": "us-east-1"}
HOSTILE = ["../../etc/passwd", "/etc/passwd", "Qm/../../x", "", "Qm" + "1" * 44, "b" + "a" * 200, "x\x00y"]


# Backend fixtures are synchronous: `_make_store` asks for them by name (getfixturevalue),
# which cannot run an async fixture from inside another one.


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3 server for the session, with the test bucket created."""
    with moto_s3_server(tmp_path_factory.mktemp("moto") / "moto.log") as endpoint:
        client = botocore.session.get_session().create_client("s3", endpoint_url=endpoint, **_boto(S3_CREDENTIALS))
        try:
            client.create_bucket(Bucket=S3_BUCKET)
        finally:
            client.close()
        yield endpoint


def _boto(creds: dict[str, str]) -> dict[str, str]:
    return {
        "aws_access_key_id": creds["access_key_id"],
        "aws_secret_access_key": creds["secret_access_key"],
        "region_name": creds["region"],
    }


async def _make_store(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, cid_version: int = 0
) -> AsyncIterator[ContentStore]:
    store: ContentStore
    if kind == "local":
        yield LocalContentStore(tmp_path / "cache", cid_version=cid_version)
        return
    spool = tmp_path / "spool"
    if kind == "s3":
        endpoint = request.getfixturevalue("s3_endpoint")
        s3 = S3ContentStore(
            S3_BUCKET,
            spool_dir=spool,
            prefix=f"{unique('t')}/",
            endpoint_url=endpoint,
            cid_version=cid_version,
            **S3_CREDENTIALS,
        )
        async with s3:
            yield s3
    elif kind == "nats":
        server = request.getfixturevalue("nats")
        nc = await connect(server.url, "pytest-store", login=server.admin)
        bucket = unique("content")
        store = NatsContentStore(nc, bucket, spool_dir=spool, cid_version=cid_version)
        try:
            await store.open()
            yield store
            await nc.jetstream().delete_object_store(bucket)
        finally:
            await nc.close()
    elif kind == "ipfs":
        ipfs = IpfsContentStore(request.getfixturevalue("ipfs_api"), spool_dir=spool, cid_version=cid_version)
        async with ipfs:
            yield ipfs
    else:
        raise AssertionError(kind)


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ContentStore]:
    async for made in _make_store(request.param, request, tmp_path):
        yield made


@pytest.fixture(params=BACKENDS)
async def store_v1(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ContentStore]:
    async for made in _make_store(request.param, request, tmp_path, cid_version=1):
        yield made


def staging_dir(store: ContentStore) -> Path:
    """Where the store keeps bytes not yet published."""
    if isinstance(store, LocalContentStore):
        return store.tmp_dir
    assert isinstance(store, S3ContentStore | NatsContentStore | IpfsContentStore)
    return store.spool_dir


def leftovers(store: ContentStore) -> list[Path]:
    staging = staging_dir(store)
    return list(staging.iterdir()) if staging.exists() else []


async def write(store: ContentStore, data: bytes, piece: int = 1000) -> str:
    writer = store.writer()
    for i in range(0, len(data), piece):
        await writer.write(data[i : i + piece])
    return await writer.commit()


async def read_all(store: ContentStore, cid: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in store.read(cid, start, end)])


def unknown_cid() -> str:
    return cid_of_bytes(os.urandom(64))


async def test_many_small_writes_give_the_right_cid(store: ContentStore) -> None:
    data = os.urandom(700_000)  # more than two 262,144-byte CID chunks
    writer = store.writer()
    for i in range(0, len(data), 997):
        await writer.write(data[i : i + 997])
    assert writer.size == len(data)
    cid = await writer.commit()
    assert cid == cid_of_bytes(data)
    assert await store.exists(cid)
    assert await store.size(cid) == len(data)
    assert await read_all(store, cid) == data
    assert leftovers(store) == []


async def test_range_reads_are_inclusive(store: ContentStore) -> None:
    data = os.urandom(300_000)
    cid = await write(store, data, 50_000)
    assert await read_all(store, cid, 10, 19) == data[10:20]
    assert await read_all(store, cid, 0, 0) == data[:1]
    assert await read_all(store, cid, 262_140, 262_150) == data[262_140:262_151]  # across a chunk boundary
    assert await read_all(store, cid, 299_000) == data[299_000:]  # to the end
    assert await read_all(store, cid, len(data) - 1, None) == data[-1:]
    assert await read_all(store, cid, 299_990, 10_000_000) == data[299_990:]  # end past the object
    assert await read_all(store, cid, len(data)) == b""


async def test_an_empty_object(store: ContentStore) -> None:
    cid = await store.writer().commit()
    assert cid == cid_of_bytes(b"")
    assert await store.size(cid) == 0
    assert await read_all(store, cid) == b""


async def test_concurrent_writers_of_the_same_bytes(store: ContentStore) -> None:
    data = os.urandom(300_000)
    cids = await asyncio.gather(*(write(store, data, piece) for piece in (1000, 50_000, 300_000, 7_777)))
    assert set(cids) == {cid_of_bytes(data)}
    assert await read_all(store, cids[0]) == data
    assert leftovers(store) == []
    # One object: a single delete removes it.
    assert await store.delete(cids[0])
    assert not await store.exists(cids[0])


async def test_a_refused_write_leaves_nothing(store: ContentStore) -> None:
    writer = store.writer(max_bytes=1000)
    first = os.urandom(600)
    await writer.write(first)
    with pytest.raises(PayloadTooLargeError):
        await writer.write(os.urandom(600))
    assert leftovers(store) == []
    assert not await store.exists(cid_of_bytes(first))
    with pytest.raises(RuntimeError):
        await writer.commit()


async def test_an_aborted_write_is_invisible(store: ContentStore) -> None:
    data = os.urandom(5000)
    with pytest.raises(RuntimeError, match="client went away"):
        async with store.writer() as writer:
            await writer.write(data)
            raise RuntimeError("client went away")
    assert leftovers(store) == []
    assert not await store.exists(cid_of_bytes(data))


async def test_delete(store: ContentStore) -> None:
    cid = await write(store, os.urandom(10_000))
    assert await store.delete(cid)
    assert not await store.exists(cid)
    assert not await store.delete(cid)
    with pytest.raises(NotFoundError):
        await store.size(cid)


async def test_unknown_cids_are_not_found(store: ContentStore, tmp_path: Path) -> None:
    cid = unknown_cid()
    assert not await store.exists(cid)
    with pytest.raises(NotFoundError):
        await store.size(cid)
    with pytest.raises(NotFoundError):
        await read_all(store, cid)
    with pytest.raises(NotFoundError):
        await read_all(store, cid, 5, 10)
    with pytest.raises(NotFoundError):
        await store.local_path(cid, tmp_path / "scratch")
    with pytest.raises(NotFoundError):
        await store.get_bytes(cid)
    assert not await store.delete(cid)


@pytest.mark.parametrize("hostile", HOSTILE)
async def test_hostile_cids_are_rejected(store: ContentStore, hostile: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidCidError):
        await store.exists(hostile)
    with pytest.raises(InvalidCidError):
        await store.size(hostile)
    with pytest.raises(InvalidCidError):
        await read_all(store, hostile)
    with pytest.raises(InvalidCidError):
        await store.local_path(hostile, tmp_path / "scratch")
    with pytest.raises(InvalidCidError):
        await store.delete(hostile)


async def test_local_path_hashes_back_to_the_cid(store: ContentStore, tmp_path: Path) -> None:
    data = os.urandom(600_000)
    cid = await write(store, data, 100_000)
    scratch = tmp_path / "scratch"
    path = await store.local_path(cid, scratch)
    assert cid_of_file(path) == cid
    assert path.read_bytes() == data
    assert await store.local_path(cid, scratch) == path  # fetched once
    if not isinstance(store, LocalContentStore):
        assert path.parent == scratch
        assert not os.access(path, os.W_OK) or os.geteuid() == 0
        assert (path.stat().st_mode & 0o222) == 0


async def test_put_file(store: ContentStore, tmp_path: Path) -> None:
    src = tmp_path / "clip.bin"
    src.write_bytes(os.urandom(3000))
    cid = await store.put_file(src)
    assert cid == cid_of_file(src)
    assert src.exists()
    assert await read_all(store, cid) == src.read_bytes()


async def test_put_bytes(store: ContentStore) -> None:
    data = os.urandom(2000)
    cid = await store.put_bytes(data)
    assert cid == cid_of_bytes(data)
    assert await read_all(store, cid) == data
    assert await store.put_bytes(data) == cid  # storing it again changes nothing
    assert await read_all(store, cid) == data
    assert await store.get_bytes(cid) == data == await store.get_bytes(cid, max_bytes=2000)
    with pytest.raises(PayloadTooLargeError, match="over 1,999 bytes"):
        await store.get_bytes(cid, max_bytes=1999)


async def test_cid_version_one(store_v1: ContentStore) -> None:
    cid = await write(store_v1, b"hello world\n")
    assert cid == "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"
    assert await read_all(store_v1, cid) == b"hello world\n"
    data = os.urandom(600_000)  # a dag-pb root over raw leaves
    big = await write(store_v1, data, 65_536)
    assert big == cid_of_bytes(data, 1)
    assert await read_all(store_v1, big, 300_000, 300_009) == data[300_000:300_010]


BIG = 20 * 1024 * 1024 + 12_345  # more than one S3 part (8 MiB) and many NATS chunks (256 KiB)


async def test_a_large_object_round_trips_in_bounded_memory(store: ContentStore, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with open(src, "wb") as handle:
        for _ in range(0, BIG, 1 << 20):
            piece = os.urandom(min(1 << 20, BIG - handle.tell()))
            digest.update(piece)
            handle.write(piece)
    expected = cid_of_file(src)
    budget = BIG // 3
    peaks: dict[str, int] = {}

    tracemalloc.start()
    try:
        assert await store.put_file(src) == expected
        peaks["put"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()

        read_digest, count = hashlib.sha256(), 0
        async for chunk in store.read(expected):
            read_digest.update(chunk)
            count += len(chunk)
        assert count == BIG
        assert read_digest.digest() == digest.digest()
        peaks["read"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()

        tail = await read_all(store, expected, BIG - 100)
        assert len(tail) == 100
        peaks["range"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()

        path = await store.local_path(expected, tmp_path / "scratch")
        peaks["local_path"] = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert path.stat().st_size == BIG
    assert cid_of_file(path) == expected
    assert all(peak < budget for peak in peaks.values()), f"peak bytes traced per step: {peaks}"
    assert leftovers(store) == []
