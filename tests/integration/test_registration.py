"""Registering outputs with the cache service in batches (`Registrar` → `cache.register_many`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from artdag_common import rpc
from artdag_common.cid import cid_of_bytes
from artdag_common.contracts import Cache
from artdag_common.errors import InvalidCidError
from artdag_common.nats_server import EmbeddedNatsServer
from artdag_common.registration import Registrar
from artdag_common.schemas import CidRequest, ContentOrigin, ContentRecord
from tests.integration.gateway_harness import gateway_harness


def record(cid: str, name: str = "out.txt") -> ContentRecord:
    return ContentRecord(cid=cid, size=5, media_type="text/plain", name=name, origin=ContentOrigin.STEP_OUTPUT)


async def test_concurrent_records_share_requests_and_a_bad_one_fails_alone(
    nats: EmbeddedNatsServer, tmp_path: Path
) -> None:
    async with gateway_harness(nats, tmp_path) as harness:
        registrar = Registrar(harness.nc, timeout_s=10)
        cids = [cid_of_bytes(f"registered {i}".encode()) for i in range(40)]
        records = [record(cid, f"out-{i}.txt") for i, cid in enumerate(cids)]
        records.insert(7, record("not-a-cid"))
        outcomes = await asyncio.gather(*(registrar.register(r) for r in records), return_exceptions=True)

        bad = outcomes.pop(7)
        assert isinstance(bad, InvalidCidError)
        assert [o.cid for o in outcomes if isinstance(o, ContentRecord)] == cids
        assert registrar.requests < len(records), "records that arrive together travel together"
        for i, cid in enumerate(cids):
            stored = await rpc.call(harness.nc, Cache.stat, CidRequest(cid=cid), timeout_s=5.0)
            assert stored.name == f"out-{i}.txt"

        # A lone record goes at once, in a request of its own; registering it again keeps its first name.
        before = registrar.requests
        again = await registrar.register(record(cids[0], "renamed.txt"))
        assert (again.name, registrar.requests) == ("out-0.txt", before + 1)


def test_batch_size_is_bounded() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        Registrar(None, timeout_s=1, max_batch=0)  # type: ignore[arg-type]
