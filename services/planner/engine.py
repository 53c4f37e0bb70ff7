"""The runs this planner drives, live: step events become changes to a run's state, dispatched
and group-committed to the `runs` KV bucket; a status change is announced.

Every write is a compare-and-set on the run's revision: a write another replica got in first
merges that replica's view of the run and writes again, so two planners following the same
run's events lose no update. The engine talks to the bus only through what it is given (the
bucket, a publisher, an RPC client, a registration call) and to SQL through the `RunBook`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from pydantic import ValidationError

from artdag_common import subjects
from artdag_common.bus import Outgoing, decode, event_message, outlasting
from artdag_common.codec import pack, unpack
from artdag_common.completion import finished_message, unsettled
from artdag_common.contracts import Cache, Verb
from artdag_common.errors import ArtdagError, NotFoundError, RetryableError
from artdag_common.metrics import RUN_DURATION, RUNS
from artdag_common.operations import get_operation
from artdag_common.registration import Register
from artdag_common.rpc import Rep, Req
from artdag_common.schemas import (
    ContentRecord,
    HoldRequest,
    Plan,
    PlanStep,
    RunEvent,
    RunState,
    RunStatus,
    StepEvent,
    StepStatus,
    StepTask,
    now,
)
from services.planner.runs import (
    RunBook,
    StateEncoder,
    apply_step_event,
    finish_if_done,
    merge_states,
    ready_steps,
    stamp_times,
)

log = logging.getLogger(__name__)

# Newly ready steps are published this many at a time (all sent, then their acks awaited together).
DISPATCH_BATCH = 1024
# A run's writes wait this many times as long as its last write took, and this long at most, for more
# changes to join them (see `_write_loop`): dispatch never waits for a write, only acks do.
WRITE_LINGER_FACTOR = 4
MAX_WRITE_LINGER_S = 0.05


class RunsBucket(Protocol):
    """The part of nats' `KeyValue` the engine uses: the `runs` bucket, read and compare-and-set."""

    async def get(self, key: str) -> KeyValue.Entry: ...

    async def update(self, key: str, value: bytes, last: int | None = None) -> int: ...


class Publisher(Protocol):
    """Stream publishes, each confirmed by its stream (`artdag_common.bus.StreamPublisher`)."""

    async def publish(self, message: Outgoing) -> None: ...

    async def publish_many(self, messages: list[Outgoing]) -> None: ...


class RunRecords(Protocol):
    """The part of the `RunBook` the engine uses: a run's plan and record."""

    async def plan(self, run_id: str) -> Plan: ...

    async def get(self, run_id: str) -> RunState: ...

    async def save_record(self, run_id: str, values: dict[str, Any]) -> None: ...


class Caller(Protocol):
    """Asks another service's verb (`artdag_common.rpc.Client`)."""

    async def call(self, verb: Verb[Req, Rep], request: Req, *, timeout_s: float | None = None) -> Rep: ...


@dataclass(frozen=True)
class _Change:
    """A change to a run's state; with `step_id`, one step event's (and `mutate` says if it changed anything)."""

    mutate: Callable[[RunState], Any]
    step_id: str | None = None


@dataclass(eq=False)
class _LiveRun:
    """A run this replica drives: the state it last wrote (at `revision`) plus the changes made since.

    Changes apply here at once (and dispatch what they make ready); `unwritten` are the
    callers waiting for a write that holds their change; `dirty` the steps whose JSON
    changed since the last write (None: all of them).
    """

    revision: int
    state: RunState
    plan: Plan
    written_status: RunStatus = RunStatus.PENDING
    unwritten: list[asyncio.Future[None]] = field(default_factory=list)
    dirty: set[str] | None = None
    dispatching: set[str] = field(default_factory=set)
    encoder: StateEncoder = field(default_factory=StateEncoder)
    writer: asyncio.Task[None] | None = None
    # Whether this replica published the run's `RunFinished` (once its final state was settled).
    finish_published: bool = False

    def __post_init__(self) -> None:
        self.written_status = self.state.status


@dataclass(frozen=True)
class _Announced:
    """What a status change announces: the run's record for SQL and its event, as written."""

    status: RunStatus
    output_cid: str | None
    error: str | None
    created_at: float
    plan_id: str | None
    record: dict[str, Any]

    @classmethod
    def of(cls, state: RunState) -> _Announced:
        return cls(state.status, state.output_cid, state.error, state.created_at, state.plan_id, RunBook.record(state))


def note_plan(state: RunState, plan_cid: str) -> None:
    """The stored plan's cid joins the run's state (unless another replica's already did)."""
    if state.plan_cid is None:
        state.plan_cid = plan_cid


def retrieved(done: asyncio.Future[Any]) -> None:
    """For a future nobody awaits any more: its exception (if any) is not an unhandled one."""
    if not done.cancelled():
        done.exception()


def _settle(done: asyncio.Future[None], error: Exception | None) -> None:
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)


class RunEngine:
    """Moves the runs this replica drives forward as changes come (step events, a start, a
    cancel); safe with many replicas.

    Live state sits in the `runs` KV bucket and every change is a compare-and-set on
    its revision, so two planners handling events of the same run cannot lose an update.
    """

    def __init__(
        self,
        runs: RunsBucket,
        publisher: Publisher,
        book: RunRecords,
        rpc: Caller,
        register: Register,
        *,
        counts: dict[str, int] | None = None,
    ) -> None:
        self.runs = runs
        self.publisher = publisher
        self.book = book
        self.rpc = rpc
        # Registers a step's output with the cache (batched: see `artdag_common.registration.Registrar`).
        self._register = register
        self.counts: dict[str, int] = counts if counts is not None else Counter()
        # Each run's plan, as this replica knows it (read from the RunBook on first use).
        self.plans: dict[str, Plan] = {}
        # Per run starting: its plan being stored (a run that finishes first waits for it: see `_write`).
        self.plans_storing: dict[str, asyncio.Task[str]] = {}
        # Live runs this replica is driving (see `_LiveRun`), and the locks of their first reads.
        self._runs: dict[str, _LiveRun] = {}
        self._loading: dict[str, asyncio.Lock] = {}
        # Per plan: each step's dependents (for readiness after a step event).
        self._dependents: dict[str, dict[str, list[PlanStep]]] = {}
        # Per live run: how long its last state write took (encode, compress, compare-and-set).
        self._write_cost: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Per live run: output registrations still in flight (see `on_step_event`).
        self._registering: dict[str, set[asyncio.Future[None]]] = {}

    def adopt(self, revision: int, state: RunState, plan: Plan) -> None:
        """Drive a run this replica has just written (at `revision`): no need to read it back."""
        self.plans[state.run_id] = plan
        self._runs[state.run_id] = _LiveRun(revision, state, plan)

    async def plan(self, run_id: str) -> Plan:
        """The run's plan (its final one, once it has one)."""
        plan = self.plans.get(run_id)
        if plan is None:
            plan = await self.book.plan(run_id)
            self.plans[run_id] = plan
        return plan

    async def state(self, run_id: str) -> RunState:
        """The run's state: as last written to the KV while it is live, else its record's."""
        live = await self.written_state(run_id)
        return live if live is not None else await self.book.get(run_id)

    async def written_state(self, run_id: str) -> RunState | None:
        """The run's state as last written to the KV (None once the run is no longer there)."""
        try:
            entry = await self.runs.get(run_id)
        except KeyNotFoundError:
            return None
        return RunState.model_validate_json(unpack(entry.value or b"{}"))

    # -- events -----------------------------------------------------------------------

    async def on_step_event(self, event: StepEvent) -> None:
        output = event.output
        if output is not None and (event.status != StepStatus.COMPLETED or output.cid != event.output_cid):
            log.warning(
                "step %s of run %s: output metadata does not match its event; ignored", event.step_id, event.run_id
            )
            output = None
        # An inline step's output is registered with the cache beside the state update (many
        # at once, see `Registrar`): its dependants need not wait for it. The event is acked only
        # once both are done, and the run is announced finished only once its registrations are.
        registering = None
        if output is not None:
            registering = asyncio.ensure_future(self._register_output(output))
            pending = self._registering.setdefault(event.run_id, set())
            pending.add(registering)
            registering.add_done_callback(pending.discard)
        try:
            plan = await self.plan(event.run_id)
        except NotFoundError:
            log.warning("event for unknown run %s", event.run_id)
            plan = None
        try:
            if plan is not None:
                await self.update(
                    event.run_id, lambda state: apply_step_event(state, event), plan, step_id=event.step_id
                )
        finally:
            if registering is not None:
                try:
                    await registering  # the bytes are stored all the same, whatever became of the run
                finally:
                    if not self._registering.get(event.run_id, True):
                        del self._registering[event.run_id]

    async def _register_output(self, record: ContentRecord) -> None:
        """Register a step's output with the cache (batched with others' by the `Registrar`).

        A transport failure raises (the event is redelivered and registered then); a record the
        cache refuses is logged: it must not hold its run back forever.
        """
        try:
            await self._register(record)
        except RetryableError:
            raise
        except ArtdagError as exc:
            log.warning("the cache refused the metadata of %s: %s", record.cid, exc)

    async def on_dead_letter(self, payload: bytes, deliveries: int) -> None:
        """A step JetStream gave up on (its worker crashed or hung every time): fail the step."""
        try:
            task = decode(StepTask, payload)
        except ValidationError:
            log.warning("dead letter is not a step task; dropped")
            return
        error = f"gave up after {deliveries} attempts: the executor crashed or timed out each time"
        await self.on_step_event(
            StepEvent(run_id=task.run_id, step_id=task.step.step_id, status=StepStatus.FAILED, error=error)
        )

    async def fail(self, run_id: str, error: str, plan: Plan) -> None:
        def fail(state: RunState) -> None:
            if not state.status.finished:
                state.status = RunStatus.FAILED
                state.error = error

        await self.update(run_id, fail, plan)

    async def update(
        self,
        run_id: str,
        mutate: Callable[[RunState], Any],
        plan: Plan,
        *,
        step_id: str | None = None,
    ) -> None:
        """Apply `mutate` to the run's state at once; returns once a write holding it is durable.

        The change is applied to this replica's copy of the run (see `_LiveRun`) and the steps
        it makes ready are dispatched right away: a step never waits for a write. Writes are
        group-committed: one compare-and-set of the whole state for every change made while the
        previous write was in flight, so an event is acked only once it is durable. `step_id`
        says `mutate` changes that step alone (a step event, returning whether it changed
        anything): then only that step's dependents are looked at for readiness.
        """
        live = await self._load(run_id, plan)
        if step_id is not None and step_id not in live.state.steps:
            # This copy predates the run's final plan (another replica expanded it): read it again.
            if live.writer is None and not live.unwritten and not live.dispatching:
                self._runs.pop(run_id, None)
                live = await self._load(run_id, plan)
            if step_id not in live.state.steps:
                raise RetryableError(f"run {run_id} has no step {step_id} yet, as this planner knows it")
        live.plan = plan  # the latest (a run's plan grows once its analyses are in)
        changed, ready = self._mutate(live, [_Change(mutate, step_id)])
        if not changed:
            # A duplicate or stale event, or a change to a finished run: nothing to write.
            if live.state.status.finished and live.writer is None:
                self._forget(run_id)
            if ready:
                await self._dispatch(live, ready)
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        live.unwritten.append(done)
        self._kick(live)
        if ready:
            try:
                await self._dispatch(live, ready)
            except BaseException:
                # This change fails (its event comes again, and so does the step); its write may still come.
                done.add_done_callback(retrieved)
                raise
        await done

    async def _load(self, run_id: str, plan: Plan) -> _LiveRun:
        """This replica's copy of the run: kept in memory while it drives it, else read from the KV."""
        live = self._runs.get(run_id)
        if live is not None:
            return live
        lock = self._loading.setdefault(run_id, asyncio.Lock())
        try:
            async with lock:
                live = self._runs.get(run_id)
                if live is None:
                    entry = await self.runs.get(run_id)
                    state = RunState.model_validate_json(unpack(entry.value or b"{}"))
                    live = _LiveRun(entry.revision or 0, state, plan)
                    self._runs[run_id] = live
                return live
        finally:
            if not lock.locked():
                self._loading.pop(run_id, None)

    def _forget(self, run_id: str) -> None:
        self._runs.pop(run_id, None)
        self.plans.pop(run_id, None)
        self._write_cost.pop(run_id, None)

    def _mutate(self, live: _LiveRun, changes: list[_Change]) -> tuple[bool, list[PlanStep]]:
        """Apply `changes` to the run: whether anything changed, and the steps now ready to dispatch."""
        state = live.state
        status_before = state.status
        if all(change.step_id is not None for change in changes):
            # Step events: each says whether it changed its step; only their dependents can become
            # ready. They are looked at even when nothing changed: an event that comes again (its
            # dependant's dispatch failed) dispatches it again.
            changed = False
            for change in changes:
                if change.mutate(state):
                    changed = True
                    if live.dirty is not None:
                        live.dirty.add(change.step_id or "")
            finish_if_done(state)
            ready = self._newly_ready(live, [c.step_id or "" for c in changes])
        else:
            before = {k: s.status for k, s in state.steps.items()}
            head = (state.plan_cid, state.plan_id, state.error)
            for change in changes:
                change.mutate(state)
            finish_if_done(state)
            changed = {k: s.status for k, s in state.steps.items()} != before
            changed = changed or (state.plan_cid, state.plan_id, state.error) != head
            live.dirty = None  # anything may have changed: every step's JSON is made again
            ready = [s for s in ready_steps(state, live.plan) if s.step_id not in live.dispatching]
        stamp_times(state)
        return changed or state.status != status_before, ready

    async def _dispatch(self, live: _LiveRun, steps: list[PlanStep]) -> None:
        """Publish `steps`; each is marked queued once its stream has it (a failed publish raises).

        They are claimed (`dispatching`) before the first await: no other change dispatches them too.
        """
        ids = [step.step_id for step in steps]
        live.dispatching.update(ids)
        try:
            for first in range(0, len(steps), DISPATCH_BATCH):
                batch = steps[first : first + DISPATCH_BATCH]
                await self.publisher.publish_many([self._task_message(live.state, step) for step in batch])
                self.counts["dispatched"] += len(batch)
                state = live.state  # the current copy (a lost compare-and-set replaces it)
                for step in batch:
                    if state.steps[step.step_id].status == StepStatus.PENDING:
                        state.steps[step.step_id].status = StepStatus.QUEUED
                        if live.dirty is not None:
                            live.dirty.add(step.step_id)
                self._kick(live)
        finally:
            live.dispatching.difference_update(ids)

    def _kick(self, live: _LiveRun) -> None:
        """Make sure a write follows the changes made to `live` (unless it is no longer this replica's copy)."""
        run_id = live.state.run_id
        if live.writer is None and self._runs.get(run_id) is live:
            live.writer = asyncio.create_task(self._write_loop(run_id, live))
            self._tasks.add(live.writer)
            live.writer.add_done_callback(self._tasks.discard)

    async def _write_loop(self, run_id: str, live: _LiveRun) -> None:
        """Write the run's state until no change is left unwritten; announce status changes.

        A big run's state costs milliseconds to write: the write then waits WRITE_LINGER_FACTOR
        times as long (at most MAX_WRITE_LINGER_S), so that the changes made meanwhile share it. A lost
        compare-and-set (another replica moved the run on) reads the run again and applies
        this replica's unwritten changes to it. Any other failure fails the changes waiting
        on this write (their events come again) and drops this copy of the run.
        """
        try:
            while live.unwritten or live.dirty is None or live.dirty:
                cost = self._write_cost.get(run_id, 0.0)
                # Small runs write in well under a millisecond and do not wait.
                if cost > 0.001 and not live.state.status.finished:
                    await asyncio.sleep(min(WRITE_LINGER_FACTOR * cost, MAX_WRITE_LINGER_S))
                waiting, live.unwritten = live.unwritten, []
                try:
                    await self._write(run_id, live, waiting)
                except Exception as exc:  # noqa: BLE001 - handed to the callers waiting on it
                    log.warning("run %s: state not written (%s); its events will come again", run_id, exc)
                    for done in [*waiting, *live.unwritten]:
                        _settle(done, exc)
                    live.unwritten = []
                    if self._runs.get(run_id) is live:
                        self._forget(run_id)
                    return
                for done in waiting:
                    _settle(done, None)
                if live.state.status.finished and not live.unwritten:
                    if self._runs.get(run_id) is live:
                        self._forget(run_id)  # a late event's write: nothing more to hold
                    break
        finally:
            live.writer = None

    async def _write(self, run_id: str, live: _LiveRun, waiting: list[asyncio.Future[None]]) -> None:
        storing = self.plans_storing.pop(run_id, None) if live.state.status.finished else None
        if storing is not None:
            # The run is done before its plan was stored (a small or cached run): it is announced with it.
            with contextlib.suppress(Exception):
                note_plan(live.state, await storing)
        if live.state.status == RunStatus.COMPLETED and live.written_status != RunStatus.COMPLETED:
            await self._deliverable(run_id, live.state)
        while True:
            state = live.state
            dirty, live.dirty = live.dirty, set()
            status = state.status
            # Announced after the write, as written (the state may move on meanwhile).
            announced = _Announced.of(state) if status != live.written_status else None
            write_started = time.perf_counter()
            body = pack(live.encoder.encode(state, None if dirty is None else list(dirty)))
            try:
                # A write the bus lost is made again (one it took but did not confirm comes back as
                # a wrong last sequence: merged like any other).
                live.revision = await outlasting(
                    functools.partial(self.runs.update, run_id, body, last=live.revision), f"writing run {run_id}"
                )
            except KeyWrongLastSequenceError:
                await self._merge(run_id, live)
                continue
            self._write_cost[run_id] = time.perf_counter() - write_started
            break
        if announced is not None:
            live.written_status = status
            await self._announce(run_id, announced)
        elif state.status.finished:
            # Written after the run was announced: steps done that the announcing replica had not
            # heard of (another replica held their events). The run's record follows.
            await self.book.save_record(run_id, RunBook.record(state))
        if state.status.finished and not live.finish_published:
            await self._publish_finished(live, state)

    async def _deliverable(self, run_id: str, state: RunState) -> None:
        """Before a completed run's state is written (whoever reads it may fetch the output at once):
        its outputs are registered and the output is its owner's."""
        await asyncio.gather(*self._registering.get(run_id, ()), return_exceptions=True)
        if not (state.owner and state.output_cid):
            return
        hold = HoldRequest(cids=[state.output_cid], user=state.owner)
        try:
            await outlasting(lambda: self.rpc.call(Cache.hold, hold), f"holding the output of {run_id}")
        except Exception as exc:  # noqa: BLE001 - the cache records it from the run's RunFinished, a moment later
            log.warning("run %s: output %s not held for %s yet (%s)", run_id, state.output_cid, state.owner, exc)

    async def _publish_finished(self, live: _LiveRun, state: RunState) -> None:
        """The run's one `RunFinished`, from the write that makes its final state complete (a
        completed run's may come from another replica's later write: see `completion.unsettled`)."""
        if state.status == RunStatus.COMPLETED and unsettled(state):
            return
        live.finish_published = True
        await self.publisher.publish(finished_message(state))

    async def _merge(self, run_id: str, live: _LiveRun) -> None:
        """Another replica wrote the run: read it, merge this replica's view in, dispatch what is ready."""
        entry = await self.runs.get(run_id)
        fresh = RunState.model_validate_json(unpack(entry.value or b"{}"))
        ours = live.state
        # The view on the run's final plan is the base (the other may predate its expansion).
        base, other = (ours, fresh) if ours.plan_id == live.plan.plan_id else (fresh, ours)
        live.state, live.revision, live.dirty = merge_states(base, other), entry.revision or 0, None
        live.written_status = fresh.status
        self.counts["merged"] += 1
        ready = [s for s in ready_steps(live.state, live.plan) if s.step_id not in live.dispatching]
        if ready:
            await self._dispatch(live, ready)

    async def _announce(self, run_id: str, run: _Announced) -> None:
        """The run's status changed: its record in SQL follows, and the change is an event."""
        if run.status.finished:
            # Whoever hears that the run is done may fetch its output at once: the cache knows it.
            # (A failed registration fails its own event, which comes again; the run is done.)
            await asyncio.gather(*self._registering.pop(run_id, ()), return_exceptions=True)
        await self.book.save_record(run_id, run.record)
        if run.status.finished:
            RUNS.add(1, {"status": run.status.value})
            RUN_DURATION.record(max(0.0, now() - run.created_at), {"status": run.status.value})
        if run.status == RunStatus.COMPLETED:
            self.counts["completed"] += 1
        elif run.status == RunStatus.FAILED:
            self.counts["failed"] += 1
        if run.status.finished:
            self._forget(run_id)
            self._dependents.pop(run.plan_id or "", None)
        # Through the publisher, which outlasts a short outage: a run's status change is not dropped
        # (nor, raised into the run's start, taken for a reason to fail the run).
        await self.publisher.publish(
            event_message(
                subjects.run_event(run_id, run.status.value),
                RunEvent(run_id=run_id, status=run.status, output_cid=run.output_cid, error=run.error),
            )
        )
        log.info("run %s %s%s", run_id, run.status.value, f": {run.error}" if run.error else "")

    def _newly_ready(self, live: _LiveRun, step_ids: list[str]) -> list[PlanStep]:
        """Pending dependents of `step_ids` whose inputs are all done (what `ready_steps` finds, locally)."""
        state, plan = live.state, live.plan
        if state.status.finished:
            return []
        dependents = self._dependents.get(plan.plan_id)
        if dependents is None:
            dependents = {}
            for step in plan.steps:
                for input_id in dict.fromkeys(step.inputs):
                    dependents.setdefault(input_id, []).append(step)
            self._dependents[plan.plan_id] = dependents
        ready: dict[str, PlanStep] = {}
        for step_id in step_ids:
            if step_id not in state.steps or not state.steps[step_id].status.done:
                continue
            for step in dependents.get(step_id, []):
                entry = state.steps.get(step.step_id)
                if (
                    entry is not None
                    and entry.status == StepStatus.PENDING
                    and step.step_id not in ready
                    and step.step_id not in live.dispatching
                    and all(i in state.steps and state.steps[i].status.done for i in step.inputs)
                ):
                    ready[step.step_id] = step
        return list(ready.values())

    def _task_message(self, state: RunState, step: PlanStep) -> Outgoing:
        # Early cutoff (inputs byte-identical to an earlier run's give that run's result) is the
        # executor's to find: it looks the result up by content key along with its other look-ups.
        input_cids = [state.steps[i].output_cid or "" for i in step.inputs]
        # Built from validated parts (the plan's step, the run's state): no need to validate again.
        task = StepTask.model_construct(
            run_id=state.run_id,
            step=step,
            input_cids=input_cids,
            input_names=[state.steps[i].name for i in step.inputs],
            fresh=state.fresh,
        )
        op = get_operation(step.node_type)
        subject = subjects.TASK_INLINE_STEP if op is not None and op.inline else subjects.TASK_STEP
        # The msg id makes a re-dispatch of the same step of the same run a no-op.
        return event_message(subject, task, msg_id=f"{state.run_id}.{step.step_id}", trace=state.traceparent)
