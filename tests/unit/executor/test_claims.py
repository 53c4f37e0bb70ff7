"""StepClaims over an in-memory claims bucket: take, renew, wait on another holder, release."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import cast

import nats.errors
import pytest
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from artdag_common.leases import Lease, read_lease
from services.executor.claims import StepClaims

STEP = "a" * 64
LEASE_S = 30.0


class MemoryKV:
    """The part of nats' `KeyValue` that claims use, in memory.

    Revisions are one sequence for the bucket, as a stream's; a deleted key leaves a tombstone
    (its revision moves on, `get` finds nothing). Every call yields to the loop first, as a
    round trip to the server does, so concurrent callers interleave.
    """

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}
        self.revisions: dict[str, int] = {}  # last revision of each key, tombstones included
        self.sequence = 0
        self.calls: list[tuple[str, str]] = []
        self.failures: dict[str, list[BaseException]] = {}  # per method: errors its next calls raise

    async def _call(self, method: str, key: str) -> None:
        await asyncio.sleep(0)
        self.calls.append((method, key))
        pending = self.failures.get(method)
        if pending:
            raise pending.pop(0)

    def write(self, key: str, value: bytes | None) -> int:
        """Set `key` (None: delete it, leaving a tombstone) at the next revision."""
        self.sequence += 1
        self.revisions[key] = self.sequence
        if value is None:
            self.values.pop(key, None)
        else:
            self.values[key] = value
        return self.sequence

    async def get(self, key: str) -> KeyValue.Entry:
        await self._call("get", key)
        if key not in self.values:
            raise KeyNotFoundError
        return KeyValue.Entry("claims", key, self.values[key], self.revisions[key], None, None, None)

    async def put(self, key: str, value: bytes) -> int:
        await self._call("put", key)
        return self.write(key, value)

    async def create(self, key: str, value: bytes) -> int:
        await self._call("create", key)
        if key in self.values:
            raise KeyWrongLastSequenceError(description="wrong last sequence")
        return self.write(key, value)

    async def update(self, key: str, value: bytes, last: int | None = None) -> int:
        await self._call("update", key)
        if self.revisions.get(key, 0) != (last or 0):
            raise KeyWrongLastSequenceError(description=f"wrong last sequence: {self.revisions.get(key, 0)}")
        return self.write(key, value)

    async def delete(self, key: str, last: int | None = None) -> bool:
        await self._call("delete", key)
        if last is not None and self.revisions.get(key, 0) != last:
            raise KeyWrongLastSequenceError(description=f"wrong last sequence: {self.revisions.get(key, 0)}")
        self.write(key, None)
        return True

    def hold(self, worker: str, for_s: float, key: str = STEP) -> None:
        """Another replica's lease on `key`, ending `for_s` from now (lapsed if negative)."""
        self.write(key, Lease(worker=worker, expires_at=time.time() + for_s).model_dump_json().encode())


def holder(kv: MemoryKV) -> str | None:
    """Who holds the step's claim as stored, or None without one."""
    value = kv.values.get(STEP)
    return None if value is None else read_lease(value).worker


def claims_of(kv: MemoryKV, worker: str = "me", *, heartbeat_s: float = 10.0, poll_s: float = 0.01) -> StepClaims:
    return StepClaims(cast(KeyValue, kv), worker, lease_s=LEASE_S, heartbeat_s=heartbeat_s, poll_s=poll_s)


async def test_a_free_step_is_taken_for_the_lease_time() -> None:
    kv = MemoryKV()
    assert await claims_of(kv).take(STEP)
    lease = read_lease(kv.values[STEP])
    assert lease.worker == "me"
    assert time.time() + LEASE_S - 2 < lease.expires_at <= time.time() + LEASE_S


async def test_taking_our_own_claim_again_renews_it() -> None:
    kv = MemoryKV()
    claims = claims_of(kv)
    assert await claims.take(STEP)
    first = kv.revisions[STEP]
    assert await claims.take(STEP)
    assert kv.revisions[STEP] > first
    assert holder(kv) == "me"


async def test_a_claim_another_replica_holds_is_refused_and_left_alone() -> None:
    kv = MemoryKV()
    kv.hold("other", LEASE_S)
    revision = kv.revisions[STEP]
    assert not await claims_of(kv).take(STEP)
    assert kv.revisions[STEP] == revision
    assert holder(kv) == "other"


@pytest.mark.parametrize(
    "value",
    [Lease(worker="other", expires_at=time.time() - 1).model_dump_json().encode(), b"", b"?", b'{"worker": "other"}'],
    ids=["lapsed", "empty", "garbage", "no-expiry"],
)
async def test_a_lapsed_or_unreadable_claim_is_taken_over(value: bytes) -> None:
    kv = MemoryKV()
    kv.write(STEP, value)
    assert await claims_of(kv).take(STEP)
    assert holder(kv) == "me"


async def test_of_two_replicas_taking_over_a_lapsed_claim_one_wins() -> None:
    kv = MemoryKV()
    kv.hold("dead", -1.0)
    won = await asyncio.gather(claims_of(kv, "a").take(STEP), claims_of(kv, "b").take(STEP))
    assert sorted(won) == [False, True]
    winner = "a" if won[0] else "b"
    assert holder(kv) == winner
    assert [method for method, _ in kv.calls].count("update") == 2, "both compared and set; one found it changed"


async def test_a_claim_released_while_being_looked_at_is_not_taken_on_that_try() -> None:
    kv = MemoryKV()
    kv.hold("other", LEASE_S)
    kv.failures["get"] = [KeyNotFoundError()]
    claims = claims_of(kv)
    assert not await claims.take(STEP)
    assert holder(kv) == "other"


async def test_taking_a_claim_waits_out_a_short_bus_outage() -> None:
    kv = MemoryKV()
    kv.failures["create"] = [nats.errors.TimeoutError()]
    assert await claims_of(kv).take(STEP)
    assert [method for method, _ in kv.calls] == ["create", "create"]


async def test_taking_a_claim_does_not_hide_other_errors() -> None:
    kv = MemoryKV()
    kv.failures["create"] = [RuntimeError("boom")]
    with pytest.raises(RuntimeError, match="boom"):
        await claims_of(kv).take(STEP)


async def test_a_held_claim_is_renewed_every_heartbeat_until_cancelled() -> None:
    kv = MemoryKV()
    claims = claims_of(kv, heartbeat_s=0.05)
    assert await claims.take(STEP)
    keep = asyncio.create_task(claims.keep(STEP))
    await asyncio.sleep(0.03)
    assert kv.calls.count(("update", STEP)) == 0, "the first renewal comes one heartbeat after the start"
    await asyncio.sleep(0.2)
    renewals = kv.calls.count(("update", STEP))
    assert 2 <= renewals <= 5
    lease = read_lease(kv.values[STEP])
    assert lease.worker == "me" and lease.expires_at > time.time() + LEASE_S - 2
    keep.cancel()
    with pytest.raises(asyncio.CancelledError):
        await keep
    await asyncio.sleep(0.12)
    assert kv.calls.count(("update", STEP)) == renewals


async def test_a_failed_renewal_is_left_to_the_next_heartbeat() -> None:
    kv = MemoryKV()
    claims = claims_of(kv, heartbeat_s=0.03)
    assert await claims.take(STEP)
    kv.failures["update"] = [nats.errors.TimeoutError(), RuntimeError("boom")]
    keep = asyncio.create_task(claims.keep(STEP))
    await asyncio.sleep(0.15)
    assert not keep.done()
    assert kv.calls.count(("update", STEP)) >= 3
    assert holder(kv) == "me", "renewed after two failures"
    keep.cancel()
    with pytest.raises(asyncio.CancelledError):
        await keep


async def test_a_released_claim_is_gone_and_free_for_another_replica() -> None:
    kv = MemoryKV()
    assert await claims_of(kv).take(STEP)
    await claims_of(kv).release(STEP)
    with pytest.raises(KeyNotFoundError):
        await kv.get(STEP)
    assert await claims_of(kv, "other").take(STEP)
    assert holder(kv) == "other"


async def test_release_leaves_a_claim_another_replica_took_over() -> None:
    """A holder that stalled past its lease, whose claim another took: its release must not free the
    step for a third replica while the second renders it."""
    kv = MemoryKV()
    assert await claims_of(kv).take(STEP)
    kv.hold("other", LEASE_S)  # taken over
    await claims_of(kv).release(STEP)
    assert holder(kv) == "other"


async def test_release_deletes_only_the_revision_it_read() -> None:
    """Another replica's take-over between the read and the delete wins: the delete is refused."""
    kv = MemoryKV()
    assert await claims_of(kv).take(STEP)
    real_get = kv.get

    async def get_then_taken_over(key: str) -> KeyValue.Entry:
        entry = await real_get(key)
        kv.hold("other", LEASE_S)
        return entry

    kv.get = get_then_taken_over  # type: ignore[method-assign]
    await claims_of(kv).release(STEP)
    assert holder(kv) == "other"


async def test_a_renewal_stops_once_another_replica_took_the_claim_over() -> None:
    kv = MemoryKV()
    claims = claims_of(kv, heartbeat_s=0.02)
    assert await claims.take(STEP)
    keep = asyncio.create_task(claims.keep(STEP))
    await asyncio.sleep(0.05)
    kv.hold("other", LEASE_S)
    await asyncio.wait_for(keep, 1.0)  # returned by itself
    assert holder(kv) == "other"


async def test_a_release_that_fails_leaves_the_claim_to_lapse() -> None:
    kv = MemoryKV()
    assert await claims_of(kv).take(STEP)
    kv.failures["delete"] = [nats.errors.TimeoutError()]
    await claims_of(kv).release(STEP)
    assert holder(kv) == "me"


async def test_waiting_on_the_holder_returns_its_result() -> None:
    kv = MemoryKV()
    kv.hold("other", LEASE_S)
    answers: list[str | None] = [None, None, "the-cid"]

    async def result() -> str | None:
        return answers.pop(0)

    async def alive() -> None:
        raise AssertionError("no heartbeat due in a wait this short")

    assert await claims_of(kv).await_holder(STEP, result, alive) == "the-cid"
    assert not answers
    assert holder(kv) == "other"


@pytest.mark.parametrize("ends", ["lapses", "released"])
async def test_waiting_on_the_holder_takes_the_claim_when_its_lease_ends(ends: str) -> None:
    kv = MemoryKV()
    kv.hold("other", 0.2 if ends == "lapses" else LEASE_S)
    looked = 0

    async def result() -> str | None:
        nonlocal looked
        looked += 1
        return None

    async def alive() -> None:
        pass

    if ends == "released":
        asyncio.get_running_loop().call_later(0.2, kv.write, STEP, None)
    started = time.monotonic()
    assert await claims_of(kv).await_holder(STEP, result, alive) is None
    assert time.monotonic() - started >= 0.19
    assert looked >= 5, "the result is looked for at every poll"
    assert holder(kv) == "me"


async def test_waiting_on_the_holder_reports_liveness_every_heartbeat() -> None:
    kv = MemoryKV()
    kv.hold("other", 0.5)
    beats: list[float] = []

    async def result() -> str | None:
        return None

    async def alive() -> None:
        beats.append(time.monotonic())

    started = time.monotonic()
    assert await claims_of(kv, heartbeat_s=0.1).await_holder(STEP, result, alive) is None
    assert 3 <= len(beats) <= 5
    assert beats[0] - started > 0.1
    assert all(later - earlier > 0.1 for earlier, later in itertools.pairwise(beats))
