"""The live-run engine over an in-memory `runs` bucket and a publisher that records what it sends:
group-committed writes, merges after a lost compare-and-set, dispatch, announcements."""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from typing import Any

import pytest
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from artdag_common import subjects
from artdag_common.bus import Outgoing, StreamUnavailableError, decode
from artdag_common.codec import pack, unpack
from artdag_common.contracts import Cache, Verb
from artdag_common.errors import NotFoundError
from artdag_common.schemas import (
    ContentOrigin,
    ContentRecord,
    HoldRequest,
    Plan,
    PlanStep,
    RunEvent,
    RunFinished,
    RunState,
    RunStatus,
    StepEvent,
    StepStatus,
    StepTask,
)
from services.planner.engine import RunEngine
from services.planner.runs import new_run_state

RUN = "run-" + "0" * 32
SOURCE_CID = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
PLAN_CID = "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"


def _id(name: str) -> str:
    return hashlib.sha3_256(name.encode()).hexdigest()


SRC, A, B, C = _id("input:video"), _id("a"), _id("b"), _id("c")


class MemoryRuns:
    """The `runs` bucket in memory, with nats' `KeyValue` semantics for `get`, `create` and
    `update(key, value, last=revision)`: one revision sequence for the bucket, a stale `last`
    refused. Each call yields to the loop first (a round trip); `hold` keeps updates waiting."""

    def __init__(self) -> None:
        self.values: dict[str, tuple[bytes, int]] = {}
        self.sequence = 0
        self.updates = 0  # updates that were written
        self.refused = 0  # updates refused for a stale revision
        self.hold: asyncio.Event | None = None
        self.holding = asyncio.Event()  # set while an update waits on `hold`

    async def get(self, key: str) -> KeyValue.Entry:
        await asyncio.sleep(0)
        if key not in self.values:
            raise KeyNotFoundError
        value, revision = self.values[key]
        return KeyValue.Entry("runs", key, value, revision, None, None, None)

    async def create(self, key: str, value: bytes) -> int:
        await asyncio.sleep(0)
        if key in self.values:
            raise KeyWrongLastSequenceError(description="wrong last sequence")
        return self._put(key, value)

    async def update(self, key: str, value: bytes, last: int | None = None) -> int:
        await asyncio.sleep(0)
        if self.hold is not None:
            self.holding.set()
            await self.hold.wait()
        current = self.values[key][1] if key in self.values else 0
        if current != (last or 0):
            self.refused += 1
            raise KeyWrongLastSequenceError(description=f"wrong last sequence: {current}")
        self.updates += 1
        return self._put(key, value)

    def _put(self, key: str, value: bytes) -> int:
        self.sequence += 1
        self.values[key] = (value, self.sequence)
        return self.sequence

    def state(self, key: str = RUN) -> RunState:
        return RunState.model_validate_json(unpack(self.values[key][0]))

    def write_as_another_replica(self, state: RunState) -> None:
        self._put(state.run_id, pack(state.model_dump_json().encode()))


class RecordingPublisher:
    """Keeps what is published; `fail_next` refuses that many publishes (a bus outage that lasted)."""

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []
        self.fail_next = 0
        self.hold: asyncio.Event | None = None

    async def publish(self, message: Outgoing) -> None:
        await self.publish_many([message])

    async def publish_many(self, messages: list[Outgoing]) -> None:
        await asyncio.sleep(0)
        if self.hold is not None:
            await self.hold.wait()
        if self.fail_next:
            self.fail_next -= 1
            raise StreamUnavailableError("no ack from the stream")
        self.sent.extend(messages)

    def dispatched(self) -> list[str]:
        """The step ids of the step tasks sent, in order."""
        return [
            decode(StepTask, m.data).step.step_id
            for m in self.sent
            if m.subject in (subjects.TASK_STEP, subjects.TASK_INLINE_STEP)
        ]

    def run_events(self) -> list[RunStatus]:
        kinds = {subjects.run_event(RUN, status.value) for status in RunStatus}
        return [decode(RunEvent, m.data).status for m in self.sent if m.subject in kinds]

    def finished(self) -> list[RunState]:
        return [decode(RunFinished, m.data).state for m in self.sent if m.subject == subjects.run_finished(RUN)]


class FakeBook:
    """The run's plan and the records saved for it (the `RunBook`'s part the engine uses)."""

    def __init__(self, plan: Plan) -> None:
        self._plan = plan
        self.records: list[dict[str, Any]] = []

    async def plan(self, run_id: str) -> Plan:
        if run_id != RUN:
            raise NotFoundError(f"no run {run_id}")
        return self._plan

    async def get(self, run_id: str) -> RunState:
        raise NotFoundError(f"no run {run_id}")

    async def save_record(self, run_id: str, values: dict[str, Any]) -> None:
        assert run_id == RUN
        self.records.append(values)


class RecordingRpc:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    async def call(self, verb: Verb[Any, Any], request: Any, *, timeout_s: float | None = None) -> Any:
        self.calls.append((verb.name, request))
        return None


def _plan() -> Plan:
    """A diamond: a and b read the input, c (the output) reads both."""

    def step(step_id: str, name: str, inputs: list[str], level: int) -> PlanStep:
        return PlanStep(step_id=step_id, name=name, node_type="RESIZE", inputs=inputs, op_version="1", level=level)

    source = PlanStep(
        step_id=SRC,
        name="input:video",
        node_type="SOURCE",
        config={"cid": SOURCE_CID},
        op_version="1",
        source_cid=SOURCE_CID,
    )
    steps = [source, step(A, "a", [SRC], 1), step(B, "b", [SRC], 1), step(C, "c", [A, B], 2)]
    return Plan(
        plan_id=_id("plan"),
        recipe_id="r",
        recipe_name="diamond",
        input_cids={"video": SOURCE_CID},
        steps=steps,
        output_step=C,
    )


class Rig:
    def __init__(self) -> None:
        self.plan = _plan()
        self.kv = MemoryRuns()
        self.publisher = RecordingPublisher()
        self.book = FakeBook(self.plan)
        self.rpc = RecordingRpc()
        self.registered: list[ContentRecord] = []
        self.engine = RunEngine(self.kv, self.publisher, self.book, self.rpc, self._register, counts=Counter())

    async def _register(self, record: ContentRecord) -> ContentRecord:
        self.registered.append(record)
        return record

    async def running(
        self, *, queued: tuple[str, ...] = (A, B), owner: str | None = None, plan_cid: str | None = PLAN_CID
    ) -> RunState:
        """The run in the bucket as another replica (or an earlier life of this one) left it: running,
        `queued` dispatched, its plan stored (unless `plan_cid` is None)."""
        state = new_run_state(RUN, self.plan)
        state.status, state.plan_cid, state.owner = RunStatus.RUNNING, plan_cid, owner
        for step_id in queued:
            state.steps[step_id].status = StepStatus.QUEUED
        await self.kv.create(RUN, pack(state.model_dump_json().encode()))
        return state

    async def event(self, step_id: str, status: StepStatus, **fields: Any) -> None:
        if status == StepStatus.COMPLETED:
            fields.setdefault("output_cid", _cid(step_id))
        await self.engine.on_step_event(StepEvent(run_id=RUN, step_id=step_id, status=status, **fields))

    async def settle(self) -> None:
        """Until the engine's background writes are done."""
        for _ in range(200):
            await asyncio.sleep(0.001)
            if not self.engine._tasks:
                return
        raise AssertionError("the engine's writes did not finish")


def _cid(step_id: str) -> str:
    # Any well-formed cid will do: the engine copies it, never reads it.
    return PLAN_CID if step_id == C else SOURCE_CID


async def test_events_apply_at_once_and_are_written_together() -> None:
    rig = Rig()
    await rig.running()
    rig.kv.hold = asyncio.Event()
    first = asyncio.create_task(rig.event(A, StepStatus.RUNNING, worker="w1"))
    await asyncio.wait_for(rig.kv.holding.wait(), 1)  # its write is in flight
    later = [
        asyncio.create_task(rig.event(B, StepStatus.RUNNING, worker="w2")),
        asyncio.create_task(rig.event(A, StepStatus.COMPLETED)),
        asyncio.create_task(rig.event(B, StepStatus.COMPLETED)),
    ]
    # Applied at once, without waiting for a write: a and b done make c ready, and it goes out.
    for _ in range(50):
        await asyncio.sleep(0)
    assert rig.publisher.dispatched() == [C]
    assert not any(task.done() for task in [first, *later])  # acked only once written
    rig.kv.hold.set()
    await asyncio.wait_for(asyncio.gather(first, *later), 2)
    await rig.settle()
    # The first event's write, then one write for everything that came while it was in flight.
    assert rig.kv.updates == 2
    state = rig.kv.state()
    assert [state.steps[s].status for s in (A, B, C)] == [StepStatus.COMPLETED, StepStatus.COMPLETED, StepStatus.QUEUED]
    assert state.steps[A].worker == "w1" and state.steps[B].worker == "w2"
    assert rig.engine.counts["merged"] == 0


async def test_a_duplicate_event_writes_nothing() -> None:
    rig = Rig()
    await rig.running()
    await rig.event(A, StepStatus.COMPLETED)
    await rig.settle()
    written = rig.kv.updates
    await rig.event(A, StepStatus.COMPLETED)
    await rig.settle()
    assert rig.kv.updates == written == 1


async def test_a_lost_compare_and_set_merges_the_other_replicas_state_and_writes_again() -> None:
    rig = Rig()
    await rig.running()
    await rig.event(A, StepStatus.RUNNING)  # this replica now holds the run (at its revision)
    await rig.settle()
    # Another replica heard that b completed, and wrote first.
    theirs = rig.kv.state()
    theirs.steps[B].status, theirs.steps[B].output_cid = StepStatus.COMPLETED, SOURCE_CID
    rig.kv.write_as_another_replica(theirs)

    await rig.event(A, StepStatus.COMPLETED)
    await rig.settle()

    assert rig.kv.refused == 1 and rig.engine.counts["merged"] == 1
    state = rig.kv.state()
    # Nothing either replica learnt is lost; with both inputs done, c went out (once).
    assert state.steps[A].status == StepStatus.COMPLETED and state.steps[B].status == StepStatus.COMPLETED
    assert state.steps[C].status == StepStatus.QUEUED
    assert rig.publisher.dispatched() == [C]


async def test_a_ready_step_is_dispatched_once_whatever_events_come_again() -> None:
    rig = Rig()
    await rig.running()
    await rig.event(A, StepStatus.COMPLETED)
    rig.publisher.hold = asyncio.Event()
    sending = asyncio.create_task(rig.event(B, StepStatus.COMPLETED))  # makes c ready: its publish waits
    for _ in range(20):
        await asyncio.sleep(0)
    # The same events again, while c's dispatch is in flight and after it.
    again = [
        asyncio.create_task(rig.event(B, StepStatus.COMPLETED)),
        asyncio.create_task(rig.event(A, StepStatus.COMPLETED)),
    ]
    for _ in range(20):
        await asyncio.sleep(0)
    rig.publisher.hold.set()
    await asyncio.wait_for(asyncio.gather(sending, *again), 2)
    await rig.event(B, StepStatus.COMPLETED)
    await rig.settle()
    assert rig.publisher.dispatched() == [C]
    assert rig.engine.counts["dispatched"] == 1
    assert rig.kv.state().steps[C].status == StepStatus.QUEUED


async def test_a_dispatch_that_failed_is_made_when_the_event_comes_again() -> None:
    rig = Rig()
    await rig.running()
    await rig.event(A, StepStatus.COMPLETED)
    rig.publisher.fail_next = 1
    with pytest.raises(StreamUnavailableError):
        await rig.event(B, StepStatus.COMPLETED)  # not acked: it is redelivered
    assert rig.publisher.dispatched() == []
    await rig.event(B, StepStatus.COMPLETED)
    await rig.settle()
    assert rig.publisher.dispatched() == [C]
    assert rig.kv.state().steps[C].status == StepStatus.QUEUED


async def test_a_completed_run_is_announced_once_and_finished_once_its_state_is_settled() -> None:
    rig = Rig()
    # c's own event came here, but b's went to another replica that has not written it yet.
    await rig.running(queued=(A, B, C), owner="alice")
    await rig.event(A, StepStatus.COMPLETED)
    await rig.event(C, StepStatus.COMPLETED)
    await rig.settle()

    state = rig.kv.state()
    assert state.status == RunStatus.COMPLETED and state.output_cid == PLAN_CID
    assert rig.publisher.run_events() == [RunStatus.COMPLETED]
    assert [r["status"] for r in rig.book.records] == ["completed"]
    # The output is its owner's before the completed state is written.
    assert rig.rpc.calls == [(Cache.hold.name, HoldRequest(cids=[PLAN_CID], user="alice"))]
    # b, which c read, is not done as far as this state shows: no RunFinished yet.
    assert rig.publisher.finished() == []

    await rig.event(B, StepStatus.COMPLETED)  # the late event settles it
    await rig.settle()
    [finished] = rig.publisher.finished()
    assert finished.status == RunStatus.COMPLETED and finished.steps[B].status == StepStatus.COMPLETED
    assert rig.kv.state().steps[B].status == StepStatus.COMPLETED
    assert [r["status"] for r in rig.book.records] == ["completed", "completed"]  # the record follows

    await rig.event(B, StepStatus.COMPLETED)  # and again: nothing more to say
    await rig.settle()
    assert rig.publisher.run_events() == [RunStatus.COMPLETED]
    assert len(rig.publisher.finished()) == 1
    assert rig.engine.counts["completed"] == 1 and len(rig.rpc.calls) == 1


async def test_a_settled_completed_run_is_finished_by_the_write_that_completes_it() -> None:
    rig = Rig()
    await rig.running(queued=(A, B, C))
    for step_id in (A, B, C):
        await rig.event(step_id, StepStatus.COMPLETED)
    await rig.settle()
    assert rig.publisher.run_events() == [RunStatus.COMPLETED]
    [finished] = rig.publisher.finished()
    assert finished.status == RunStatus.COMPLETED and finished.output_cid == PLAN_CID
    assert rig.rpc.calls == []  # no owner: nothing to hold


async def test_a_run_done_before_its_plan_is_stored_waits_for_it_and_is_finished_with_it() -> None:
    rig = Rig()
    await rig.running(queued=(A, B, C), plan_cid=None)
    stored = asyncio.Event()

    async def store_plan() -> str:
        await stored.wait()
        return PLAN_CID

    rig.engine.plans_storing[RUN] = asyncio.create_task(store_plan())
    await rig.event(A, StepStatus.COMPLETED)
    await rig.event(B, StepStatus.COMPLETED)
    last = asyncio.create_task(rig.event(C, StepStatus.COMPLETED))
    await asyncio.sleep(0.01)
    # The completed state waits for the plan's cid (and so does the event's ack).
    assert rig.kv.state().status == RunStatus.RUNNING and not last.done()
    assert rig.publisher.run_events() == []
    stored.set()
    await asyncio.wait_for(last, 1)
    await rig.settle()
    state = rig.kv.state()
    assert (state.status, state.plan_cid) == (RunStatus.COMPLETED, PLAN_CID)
    [finished] = rig.publisher.finished()
    assert finished.plan_cid == PLAN_CID
    assert RUN not in rig.engine.plans_storing


async def test_a_failed_step_fails_the_run() -> None:
    rig = Rig()
    await rig.running()
    await rig.event(B, StepStatus.RUNNING)
    await rig.event(A, StepStatus.FAILED, error="bad media")
    await rig.settle()
    state = rig.kv.state()
    assert state.status == RunStatus.FAILED
    assert state.error == "step 'a' (RESIZE) failed: bad media"
    assert state.steps[C].status == StepStatus.PENDING and rig.publisher.dispatched() == []
    assert rig.publisher.run_events() == [RunStatus.FAILED]
    [finished] = rig.publisher.finished()  # a failed run has nothing to wait for
    assert finished.status == RunStatus.FAILED
    assert rig.engine.counts["failed"] == 1
    # A step done after its run failed is kept; the run stays failed and is not announced again
    # (its RunFinished, sent again with the write, carries the same message id: the stream keeps one).
    await rig.event(B, StepStatus.COMPLETED)
    await rig.settle()
    state = rig.kv.state()
    assert state.status == RunStatus.FAILED and state.steps[B].status == StepStatus.COMPLETED
    assert rig.publisher.run_events() == [RunStatus.FAILED] and rig.engine.counts["failed"] == 1
    finished_ids = {
        (m.headers or {}).get("Nats-Msg-Id") for m in rig.publisher.sent if m.subject == subjects.run_finished(RUN)
    }
    assert finished_ids == {f"finished.{RUN}"}


async def test_a_dead_lettered_step_fails_its_run() -> None:
    rig = Rig()
    await rig.running()
    task = StepTask(run_id=RUN, step=rig.plan.steps[1], input_cids=[SOURCE_CID])
    await rig.engine.on_dead_letter(task.model_dump_json().encode(), deliveries=5)
    await rig.settle()
    state = rig.kv.state()
    assert state.status == RunStatus.FAILED and "gave up after 5 attempts" in (state.error or "")
    await rig.engine.on_dead_letter(b"not a task", deliveries=1)  # dropped, not raised


async def test_an_output_is_registered_before_its_run_is_announced() -> None:
    rig = Rig()
    await rig.running(queued=(A, B, C))
    await rig.event(A, StepStatus.COMPLETED)
    await rig.event(B, StepStatus.COMPLETED)
    output = ContentRecord(cid=PLAN_CID, size=3, media_type="video/mp4", origin=ContentOrigin.STEP_OUTPUT)
    await rig.event(C, StepStatus.COMPLETED, output=output)
    await rig.settle()
    assert rig.registered == [output]
    assert rig.publisher.run_events() == [RunStatus.COMPLETED]


async def test_an_event_of_an_unknown_run_changes_nothing() -> None:
    rig = Rig()
    await rig.engine.on_step_event(StepEvent(run_id="run-" + "1" * 32, step_id=A, status=StepStatus.COMPLETED))
    assert rig.kv.updates == 0 and rig.publisher.sent == []
