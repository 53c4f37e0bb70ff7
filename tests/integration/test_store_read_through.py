"""IPFS-primary mode: every object goes to IPFS; the local store is a read-through cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from artdag_common.cid import cid_of_bytes
from artdag_common.content_store import LocalContentStore, open_store
from artdag_common.content_store.ipfs import IpfsContentStore
from artdag_common.content_store.read_through import ReadThroughStore
from artdag_common.settings import CommonSettings


async def test_objects_go_to_ipfs_and_come_back_through_the_cache(ipfs_api: str, tmp_path: Path) -> None:
    ipfs = IpfsContentStore(ipfs_api, spool_dir=tmp_path / "spool")
    local = LocalContentStore(tmp_path / "cache")
    store = ReadThroughStore(ipfs, local)
    await store.open()
    try:
        data = os.urandom(600_000)
        writer = store.writer()
        for i in range(0, len(data), 100_000):
            await writer.write(data[i : i + 100_000])
        cid = await writer.commit()
        assert cid == cid_of_bytes(data)
        assert await ipfs.exists(cid) and await local.exists(cid)

        assert await local.delete(cid)  # the cache forgets; IPFS still has it
        assert await store.exists(cid)
        assert b"".join([c async for c in store.read(cid, 5, 14)]) == data[5:15]
        path = await store.local_path(cid, tmp_path / "scratch")
        assert path.read_bytes() == data
        assert await local.exists(cid), "what was fetched is kept"

        assert await store.delete(cid)
        assert not await store.exists(cid)
    finally:
        await store.aclose()


def test_ipfs_primary_setting_builds_the_read_through_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTDAG_HOME", str(tmp_path))
    monkeypatch.setenv("IPFS_PRIMARY", "true")
    store = open_store(CommonSettings())
    assert isinstance(store, ReadThroughStore)
    assert isinstance(store.primary, IpfsContentStore) and isinstance(store.cache, LocalContentStore)
    monkeypatch.setenv("IPFS_PRIMARY", "false")
    assert isinstance(open_store(CommonSettings()), LocalContentStore)
