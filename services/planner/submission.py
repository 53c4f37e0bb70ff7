"""Taking runs in: a submit takes its run id once (a retry answers with the run it made), and
the run starts (final plan, cached results, first steps) under a lease; recovery starts runs
whose planner died before it could.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NoKeysError
from nats.js.kv import KeyValue
from opentelemetry import trace

from artdag_common import subjects
from artdag_common.bus import TRANSIENT, event_message, outlasting
from artdag_common.codec import pack, unpack
from artdag_common.errors import ArtdagError, ConflictError, NotFoundError, RetryableError
from artdag_common.faults import crash_point
from artdag_common.ids import check_run_id, new_run_id
from artdag_common.leases import held_by_anyone, lease_value, take_lease
from artdag_common.metrics import STEPS
from artdag_common.recipe import Recipe
from artdag_common.schemas import (
    Plan,
    RunEvent,
    RunState,
    RunStatus,
    StepStatus,
    SubmitRunReply,
    SubmitRunRequest,
    now,
)
from artdag_common.telemetry import RUN_ID, current_run_id, current_traceparent, exporting, tracer
from services.planner.engine import Publisher, RunEngine, note_plan, retrieved
from services.planner.preparation import Preparation
from services.planner.runs import RunBook, new_run_state

log = logging.getLogger(__name__)
_tracer = tracer(__name__)

# A run accepted this long ago and still pending lost its planner before it started.
RECOVER_AFTER_S = 10.0
RECOVERY_LEASE = "planner-recovery"
# A starting run's lease is renewed this often.
START_LEASE_RENEW_S = 5.0
# A lease (recovery, a run's start) lapses after this many of its renewal periods without one:
# a planner that died hands its work over that soon.
LEASE_ROUNDS = 3


def _start_lease(run_id: str) -> str:
    return f"start-{run_id}"


class Submissions:
    """Accepts runs, once per run id, and starts them; safe with many replicas (the KV create of
    a run's state is where its id is taken, by one submit only)."""

    def __init__(
        self,
        instance: str,
        publisher: Publisher,
        book: RunBook,
        runs: KeyValue,
        preparation: Preparation,
        engine: RunEngine,
        claims: KeyValue | None = None,
    ) -> None:
        self.instance = instance
        self.publisher = publisher
        self.book = book
        self.runs = runs
        self.preparation = preparation
        self.engine = engine
        # Leases in the claims bucket: who is starting which run, who recovers (see `keep_recovering`).
        self.claims = claims
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, request: SubmitRunRequest) -> SubmitRunReply:
        """Accept a run, once per run id: a submit sent again (a client's retry with the same
        Idempotency-Key, a gateway that timed out) answers with the run the first one made."""
        recipe, plan = await self.preparation.prepare(request.recipe, request.inputs, request.owner, request.viewer)
        run_id = check_run_id(request.run_id) if request.run_id is not None else new_run_id()
        if request.run_id is not None and (earlier := await self._earlier_submit(run_id, plan, request)) is not None:
            return earlier
        await self.preparation.check_quotas(request.owner)
        state = new_run_state(run_id, plan)
        # The submitting request's trace becomes the run's: every step it dispatches joins it.
        trace.get_current_span().set_attribute(RUN_ID, run_id)
        state.traceparent = current_traceparent()
        state.owner = request.owner
        state.fresh = request.fresh
        # The KV create is where a run id is taken, by one submit only; the record follows it.
        try:
            revision = await self.runs.create(run_id, pack(state.model_dump_json().encode()))
        except KeyWrongLastSequenceError:
            earlier = await self._earlier_submit(run_id, plan, request)
            if earlier is None:
                raise RetryableError(f"run {run_id} is being accepted; try again", field="run_id") from None
            return earlier
        crash_point("submit:taken")
        try:
            await self.book.create(state, request.recipe, plan)
        except BaseException:
            with contextlib.suppress(Exception):
                await self.runs.purge(run_id)  # not accepted after all: the id is free for a retry
            raise
        crash_point("submit:recorded")
        # This replica starts the run: it need not read back what it just wrote.
        self.engine.adopt(revision, state, plan)
        self.engine.counts["submitted"] += 1
        # As accepted: the start below may move the run on before this submit answers.
        accepted = state.status
        task = asyncio.create_task(self._start(run_id, plan, recipe, fresh=request.fresh))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        # The run is accepted and starting whatever becomes of this event (it only informs watchers).
        submitted = RunEvent(run_id=run_id, status=RunStatus.PENDING)
        try:
            await self.publisher.publish(event_message(subjects.run_event(run_id, "submitted"), submitted))
        except TRANSIENT as exc:
            log.warning("run %s: its submitted event was not published (%s)", run_id, exc)
        return SubmitRunReply(run_id=run_id, status=accepted, plan_id=plan.plan_id)

    async def _earlier_submit(self, run_id: str, plan: Plan, request: SubmitRunRequest) -> SubmitRunReply | None:
        """The run an earlier submit made under `run_id`, if any; a different request under it is a conflict."""
        try:
            state = await self.engine.state(run_id)
        except NotFoundError:
            return None
        if (state.owner, state.recipe_id, state.inputs) != (request.owner, plan.recipe_id, dict(plan.input_cids)):
            raise ConflictError(
                "this Idempotency-Key was used for another run (another recipe or other inputs)",
                field="Idempotency-Key",
            )
        try:
            await self.book.recipe_text(run_id)
        except NotFoundError:
            # In the KV but not recorded: a submit is between its two writes, or died there.
            if now() - state.created_at < RECOVER_AFTER_S:
                raise RetryableError(f"run {run_id} is being accepted; try again", field="run_id") from None
            log.warning("run %s was never recorded (its submit died); taking its id afresh", run_id)
            await self._drop_unrecorded(run_id)
            return None
        return SubmitRunReply(run_id=run_id, status=state.status, plan_id=state.plan_id)

    async def _start(self, run_id: str, plan: Plan, recipe: Recipe, *, fresh: bool = False) -> None:
        # Once per run: analysis, final plan and result lookups show as one span of the run's trace.
        token = current_run_id.set(run_id)  # its log records name the run
        # While it starts (analyses can take a while), a lease says so: recovery leaves it alone
        # unless this replica dies and the lease lapses.
        lease = asyncio.create_task(self._hold_start_lease(run_id))
        try:
            with _tracer.start_as_current_span("plan run", attributes={RUN_ID: run_id}):
                await self._begin(run_id, plan, recipe, fresh=fresh)
        finally:
            lease.cancel()
            if self.claims is not None:
                with contextlib.suppress(Exception):
                    await self.claims.delete(_start_lease(run_id))
            current_run_id.reset(token)

    async def _hold_start_lease(self, run_id: str) -> None:
        if self.claims is None:
            return
        while True:
            with contextlib.suppress(Exception):
                await self.claims.put(
                    _start_lease(run_id), lease_value(self.instance, LEASE_ROUNDS * START_LEASE_RENEW_S)
                )
            await asyncio.sleep(START_LEASE_RENEW_S)

    async def _begin(self, run_id: str, plan: Plan, recipe: Recipe, *, fresh: bool) -> None:
        """Start the run; a bus outage meanwhile is waited out (every part of a start may be made
        again), anything else fails the run with its reason."""
        try:
            await outlasting(lambda: self._begin_once(run_id, plan, recipe, fresh=fresh), f"starting run {run_id}")
        except ArtdagError as exc:
            log.warning("run %s could not start: %s", run_id, exc)
            await self.engine.fail(run_id, exc.message, plan)
        except Exception as exc:
            log.exception("run %s could not start", run_id)
            await self.engine.fail(run_id, f"could not start: {exc}", plan)

    async def _begin_once(self, run_id: str, plan: Plan, recipe: Recipe, *, fresh: bool) -> None:
        planned = await self._with_chunks(run_id, plan, recipe)
        replan = planned.plan_id != plan.plan_id
        plan = planned
        rendered = [step.step_id for step in plan.steps if step.node_type != "SOURCE"]
        # The plan is stored while the results are looked up and the first steps run: its cid
        # joins the run's state when it is there, and before the run is announced finished
        # (see `RunEngine._write`). A fresh run (re-verification) renders everything: nothing is cached.
        storing = asyncio.create_task(self.preparation.store_plan(plan))
        self.engine.plans_storing[run_id] = storing
        try:
            cached = {} if fresh else await self.preparation.known_results(rendered)
        except BaseException:
            storing.add_done_callback(retrieved)
            raise

        def begin(state: RunState) -> None:
            if replan:
                replanned = new_run_state(run_id, plan)
                state.steps, state.plan_id = replanned.steps, replanned.plan_id
                state.output_step = replanned.output_step
            state.status = RunStatus.RUNNING
            for step_id, cid in cached.items():
                state.steps[step_id].status = StepStatus.CACHED
                state.steps[step_id].output_cid = cid

        crash_point("start:planned")
        try:
            await self.engine.update(run_id, begin, plan)
        finally:
            plan_cid = await storing
        crash_point("start:begun")
        if self.engine.plans_storing.pop(run_id, None) is not None:
            await self.engine.update(run_id, lambda state: note_plan(state, plan_cid), plan)
        self.engine.counts["cached"] += len(cached)
        node_types = {s.step_id: s.node_type for s in plan.steps} if cached else {}
        for step_id in cached:
            STEPS.add(1, {"node_type": node_types[step_id], "outcome": "cached"})
        if exporting():
            span = trace.get_current_span()
            span.set_attribute("artdag.plan_id", plan.plan_id)
            span.set_attribute("artdag.steps", len(rendered))
            span.set_attribute("artdag.steps_cached", len(cached))

    async def _with_chunks(self, run_id: str, plan: Plan, recipe: Recipe) -> Plan:
        """The run's final plan: analyses done, beat-synced cuts expanded, long effects split into chunks."""
        final = await self.preparation.final_plan(run_id, plan, recipe)
        if final.plan_id != plan.plan_id:
            await self.book.set_plan(run_id, final)
            self.engine.plans[run_id] = final
        return final

    async def keep_recovering(self, every_s: float) -> None:
        """Recover now and every `every_s`, on one planner at a time: the one that takes the lease.

        The lease is a key in the claims bucket, taken with a create (one replica wins) and gone
        with the bucket's TTL, so a planner that stops holding it (killed) hands over by itself.
        """
        first = True
        while True:
            try:
                if first:
                    await self.recover()  # a restarted replica looks at once, lease or not
                elif self.claims is not None and await take_lease(
                    self.claims, RECOVERY_LEASE, self.instance, LEASE_ROUNDS * every_s
                ):
                    await self.recover()
            except Exception:  # the next round tries again: recovery must not die
                log.exception("recovering runs failed; trying again in %g s", every_s)
            first = False
            await asyncio.sleep(every_s)

    async def recover(self) -> None:
        """After a restart (of this or another replica): start runs that were accepted but never started."""
        try:
            keys = await self.runs.keys()
        except NoKeysError:
            return
        for run_id in keys:
            with contextlib.suppress(KeyNotFoundError, RetryableError):
                entry = await self.runs.get(run_id)
                state = RunState.model_validate_json(unpack(entry.value or b"{}"))
                if state.status == RunStatus.PENDING and now() - state.created_at > RECOVER_AFTER_S:
                    if run_id in self.engine.plans_storing or await self._being_started(run_id):
                        continue  # a planner is starting it (a long analysis, say)
                    try:
                        recipe_text = await self.book.recipe_text(run_id)
                    except NotFoundError:
                        # Its submit stopped between the two writes: it was never accepted.
                        log.warning("run %s has no record (its submit did not finish); dropping it", run_id)
                        await self._drop_unrecorded(run_id, entry.revision)
                        continue
                    log.info("run %s was never started; starting it", run_id)
                    self.engine.counts["recovered"] += 1
                    recipe = await self.preparation.parse(recipe_text, state.owner)  # its effect names as its owner's
                    await self._start(run_id, await self.engine.plan(run_id), recipe)

    async def _drop_unrecorded(self, run_id: str, revision: int | None = None) -> None:
        """Delete a run's KV entry that no record follows, as it was read: a submit that has just
        taken the id again (a client's retry) keeps it."""
        with contextlib.suppress(KeyNotFoundError):
            if revision is None:
                revision = (await self.runs.get(run_id)).revision
            try:
                await self.runs.delete(run_id, last=revision)
            except KeyWrongLastSequenceError:
                raise RetryableError(f"run {run_id} is being accepted; try again", field="run_id") from None

    async def _being_started(self, run_id: str) -> bool:
        return self.claims is not None and await held_by_anyone(self.claims, _start_lease(run_id))
