"""Every provider type holds a copy the way the replicator uses it: stored and hashed to its CID, read
back verified, removed. Against the real servers: a directory, a NATS object store, the offline IPFS
node, and a pinning service (the tests' own implementation of the spec) in front of that node."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from artdag_common.cid import cid_of_bytes
from artdag_common.content_store import LocalContentStore
from artdag_common.errors import NotFoundError
from artdag_common.nats_server import EmbeddedNatsServer
from services.cache.providers import open_replica, validate_config
from services.cache.replicas import CopyMismatchError, StoreReplica, hash_of
from services.cache.replication import FileSource
from tests.pinning_service import running_pinning_service

BODY = os.urandom(300_000)
CID = cid_of_bytes(BODY)


@contextmanager
def local_config(tmp_path: Path, _: str) -> Iterator[tuple[str, dict[str, Any]]]:
    directory = tmp_path / "provider"
    directory.mkdir()
    yield "local", {"path": str(directory)}


@contextmanager
def nats_config(tmp_path: Path, _: str) -> Iterator[tuple[str, dict[str, Any]]]:
    with EmbeddedNatsServer(tmp_path / "other-nats") as server:
        yield "nats", {"url": server.url, "bucket": "copies"}


@contextmanager
def ipfs_config(_: Path, ipfs_api: str) -> Iterator[tuple[str, dict[str, Any]]]:
    yield "ipfs", {"api": ipfs_api}


@contextmanager
def pinning_config(_: Path, ipfs_api: str) -> Iterator[tuple[str, dict[str, Any]]]:
    with running_pinning_service(ipfs_api) as service:
        yield "pinning", {"endpoint": service.url, "access_token": service.token, "ipfs_api": ipfs_api}


@pytest.fixture
async def source(tmp_path: Path) -> AsyncIterator[FileSource]:
    path = tmp_path / "original.bin"
    path.write_bytes(BODY)
    yield FileSource(CID, path)


Provider = Callable[[Path, str], Any]


@pytest.mark.parametrize(
    "provider", [local_config, nats_config, ipfs_config, pinning_config], ids=["local", "nats", "ipfs", "pinning"]
)
async def test_a_copy_is_stored_verified_read_back_and_removed(
    provider: Provider, source: FileSource, tmp_path: Path, ipfs_api: str
) -> None:
    with provider(tmp_path, ipfs_api) as (kind, raw_config):
        config = validate_config(kind, raw_config)
        async with AsyncExitStack() as stack:
            replica = await open_replica(kind, config, tmp_path / "spool", stack, 0)
            ref = await replica.store(CID, source)
            assert (ref is not None) == (kind == "pinning")
            assert await replica.store(CID, source) == ref, "storing again makes no second copy"

            landing = LocalContentStore(tmp_path / "landing")
            await replica.fetch(CID, landing, ref)
            assert b"".join([chunk async for chunk in landing.read(CID)]) == BODY

            await replica.remove(CID, ref)
            await replica.remove(CID, ref)  # twice: no error
            if kind != "pinning":  # a pinning service's node keeps its own copy; only the pin goes
                with pytest.raises(NotFoundError):
                    await replica.fetch(CID, LocalContentStore(tmp_path / "again"), ref)


async def test_a_copy_that_does_not_hash_to_its_cid_is_refused_and_removed(tmp_path: Path) -> None:
    directory = tmp_path / "provider"
    directory.mkdir()
    target = LocalContentStore(directory, small_object_max=-1)
    replica = StoreReplica(target)
    wrong = tmp_path / "wrong.bin"
    wrong.write_bytes(b"not what the cid says")
    with pytest.raises(CopyMismatchError):
        await replica.store(CID, FileSource(CID, wrong))
    assert not await target.exists(CID)
    assert not list(directory.rglob("Qm*")), "the wrong bytes were left at the provider"

    # A provider whose copy changed under it (bit rot, a tampered bucket): the next store finds it out.
    good = tmp_path / "good.bin"
    good.write_bytes(BODY)
    await replica.store(CID, FileSource(CID, good))
    target.object_path(CID).write_bytes(b"tampered")
    assert await hash_of(target, CID) != CID
    with pytest.raises(CopyMismatchError):
        await replica.store(CID, FileSource(CID, good))
    assert not await target.exists(CID)
