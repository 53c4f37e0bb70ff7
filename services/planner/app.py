from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from nats.aio.msg import Msg
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NoKeysError
from nats.js.kv import KeyValue
from opentelemetry import trace
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from artdag_common import rpc, streams, subjects
from artdag_common.bus import (
    TRANSIENT,
    Outgoing,
    decode,
    event_message,
    kv_get_many,
    outlasting,
    watch_dead_letters,
)
from artdag_common.codec import pack, unpack
from artdag_common.completion import finished_message, unsettled
from artdag_common.content_store import ContentStore, open_store_async
from artdag_common.contracts import Analyzer, Cache, Planner
from artdag_common.db import dispose_engine, make_engine, session_factory
from artdag_common.errors import (
    ArtdagError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitedError,
    RetryableError,
    ServiceUnavailableError,
)
from artdag_common.examples import example_recipes
from artdag_common.faults import crash_point
from artdag_common.ids import canonical_json, check_run_id, new_run_id
from artdag_common.leases import held_by_anyone, lease_value, take_lease
from artdag_common.media_limits import InputLimits
from artdag_common.metrics import RUN_DURATION, RUNS, STEPS
from artdag_common.operations import get_operation
from artdag_common.recipe import Recipe, parse_recipe
from artdag_common.registration import Registrar
from artdag_common.runtime import ServiceRuntime
from artdag_common.schemas import (
    MAX_LIST_ITEMS,
    AnalysisReply,
    AssetResolveRequest,
    CidRequest,
    CidsRequest,
    ContentFound,
    ContentOrigin,
    ContentRecord,
    ExecuteRequest,
    HoldRequest,
    ListRunsRequest,
    MediaInfo,
    Plan,
    PlannedStep,
    PlanReply,
    PlanRequest,
    PlanStep,
    ProbeManyReply,
    RecipeList,
    RecipeRecord,
    RecipeRequest,
    RecipeUpload,
    RunAnalysis,
    RunEvent,
    RunList,
    RunRecipeRequest,
    RunRequest,
    RunState,
    RunStatus,
    StepEvent,
    StepStatus,
    StepTask,
    SubmitRunReply,
    SubmitRunRequest,
    UsageReply,
    UsageRequest,
    now,
)
from artdag_common.telemetry import (
    RUN_ID,
    STEP_ID,
    current_run_id,
    current_traceparent,
    exporting,
    extract_context,
    tracer,
)
from services.planner.handoff import chunkable, has_transition
from services.planner.planning import (
    Chunking,
    analysis_requests,
    bind_inputs,
    build_plan,
    encoded_frames,
    estimate_frames,
    input_items,
)
from services.planner.recipes import RecipeBook
from services.planner.runs import (
    RunBook,
    StateEncoder,
    apply_step_event,
    finish_if_done,
    merge_states,
    new_run_state,
    ready_steps,
    stamp_times,
)
from services.planner.settings import PlannerSettings

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


# The share of an RPC's time a submit gives the analyzer to probe its inputs.
PROBE_SHARE = 0.5
# Whether a result's bytes are still stored: this many checks at once.
LOOKUPS_IN_FLIGHT = 128
# Newly ready steps are published this many at a time (all sent, then their acks awaited together).
DISPATCH_BATCH = 1024
# Step events handled at once by one replica (bounded by the consumer's max_ack_pending).
EVENTS_IN_FLIGHT = 256
# Submits answered at once (each waits on the database and the bus, not the CPU): one at a time,
# a burst of them outlasted the gateway's patience.
SUBMITS_IN_FLIGHT = 16
# A run's writes wait this many times as long as its last write took, and this long at most, for more
# changes to join them (see `_write_loop`): dispatch never waits for a write, only acks do.
WRITE_LINGER_FACTOR = 4
MAX_WRITE_LINGER_S = 0.05


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


def _note_plan(state: RunState, plan_cid: str) -> None:
    if state.plan_cid is None:
        state.plan_cid = plan_cid


def _retrieved(done: asyncio.Future[Any]) -> None:
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


class RunDriver:
    """Submits runs and moves them forward as step events arrive; safe with many replicas.

    Live state sits in the `runs` KV bucket and every change is a compare-and-set on
    its revision, so two planners handling events of the same run cannot lose an update.
    """

    def __init__(
        self,
        runtime: ServiceRuntime,
        settings: PlannerSettings,
        book: RunBook,
        recipes: RecipeBook,
        runs: KeyValue,
        store: ContentStore,
        claims: KeyValue | None = None,
    ) -> None:
        self.runtime = runtime
        self.settings = settings
        self.book = book
        self.recipes = recipes
        self.runs = runs
        self.store = store
        # Leases in the claims bucket: who is starting which run, who recovers (see `keep_recovering`).
        self.claims = claims
        self.registrar = Registrar(runtime.nc, timeout_s=settings.rpc_timeout_s)
        self._plans: dict[str, Plan] = {}
        # Live runs this replica is driving (see `_LiveRun`), and the locks of their first reads.
        self._runs: dict[str, _LiveRun] = {}
        self._loading: dict[str, asyncio.Lock] = {}
        # Per plan: each step's dependents (for readiness after a step event).
        self._dependents: dict[str, dict[str, list[PlanStep]]] = {}
        # Per live run: how long its last state write took (encode, compress, compare-and-set).
        self._write_cost: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Per run starting: its plan being stored (see `_begin`).
        self._plans_storing: dict[str, asyncio.Task[str]] = {}
        # Per live run: output registrations still in flight (see `on_step_event`).
        self._registering: dict[str, set[asyncio.Future[None]]] = {}
        self.counts = {
            "submitted": 0,
            "completed": 0,
            "failed": 0,
            "cancelled": 0,
            "dispatched": 0,
            "cached": 0,
            "recovered": 0,
            "merged": 0,  # writes that lost a compare-and-set to another replica, and merged
        }
        self.chunking = Chunking(settings.chunk_seconds) if settings.chunk_seconds > 0 else None
        self.limits = InputLimits.of(settings)

    # -- submission ---------------------------------------------------------------

    async def _prepare(self, recipe_text: str, inputs: dict[str, str], owner: str | None) -> tuple[Recipe, Plan]:
        """Validate recipe and inputs (the inputs must be stored content of the declared kind, within
        the input limits), plan. A list's length is checked before any of its items is looked up."""
        recipe = parse_recipe(recipe_text)
        input_cids = bind_inputs(recipe, await self._with_assets(recipe, inputs, owner))
        media_types: dict[str, str] = {}
        items = [
            (name, label, cid)
            for name, value in input_cids.items()
            for label, cid in input_items(name, value, recipe.inputs[name].list)
        ]
        records = await self._stat_all([cid for _, _, cid in items])
        for name, _, cid in items:
            record = records.get(cid)
            if record is None:
                raise InvalidInputError(f"no content with cid {cid} (upload it first)", field=f"inputs.{name}")
            if recipe.inputs[name].type == "video" and record.media_type.startswith("audio/"):
                raise InvalidInputError(
                    f"the recipe wants video here, but {cid} is {record.media_type}", field=f"inputs.{name}"
                )
            media_types[name] = record.media_type
        await self._check_limits(items)
        plan = build_plan(
            recipe,
            input_cids,
            cluster_key=self.settings.cluster_key_value,
            max_steps=self.settings.max_plan_steps,
            media_types=media_types,
        )
        return recipe, plan

    async def _stat_all(self, cids: list[str]) -> dict[str, ContentRecord]:
        """The stored content among `cids`: one batched request per `MAX_LIST_ITEMS` of them."""
        wanted = list(dict.fromkeys(cids))
        found: dict[str, ContentRecord] = {}
        for start in range(0, len(wanted), MAX_LIST_ITEMS):
            reply: ContentFound = await self.runtime.rpc.call(
                Cache.stat_many, CidsRequest(cids=wanted[start : start + MAX_LIST_ITEMS])
            )
            found.update((record.cid, record) for record in reply.records)
        return found

    async def _check_limits(self, items: list[tuple[str, str, str]]) -> None:
        """Refuse (422) an input whose media declares more than the input limits (ARTDAG_MAX_INPUT_*).

        The analyzer probes each cid once (its answers are cached). An input it cannot read is
        left to its step, which says why; an analyzer too slow to answer leaves the limits to the
        executors, which check them again before they decode.
        """
        cids = list(dict.fromkeys(cid for _, _, cid in items))
        infos: dict[str, MediaInfo] = {}
        for start in range(0, len(cids), MAX_LIST_ITEMS):
            chunk = cids[start : start + MAX_LIST_ITEMS]
            try:
                reply: ProbeManyReply = await self.runtime.rpc.call(
                    Analyzer.probe_many, CidsRequest(cids=chunk), timeout_s=self.settings.rpc_timeout_s * PROBE_SHARE
                )
            except ServiceUnavailableError as exc:
                log.info("inputs not probed at submit (%s); their steps check the limits as they decode", exc)
                return
            infos.update((cid, out.info) for cid, out in zip(chunk, reply.outcomes, strict=True) if out.info)
        for name, label, cid in items:
            if (info := infos.get(cid)) is None:
                continue
            reason = self.limits.excess(
                width=info.width, height=info.height, duration_s=info.duration_s, frames=info.frame_count
            )
            if reason is not None:
                raise InvalidInputError(f"{label} ({cid}): {reason}", field=f"inputs.{name}")

    async def _check_quotas(self, owner: str | None) -> None:
        """A user's runs not finished yet (429) and stored bytes (413) within their quotas (0: none)."""
        if owner is None:
            return  # the system's own runs (derived media)
        queued_quota = self.settings.quota_queued_runs
        if queued_quota and (queued := await self.book.unfinished(owner)) >= queued_quota:
            raise RateLimitedError(
                f"{owner} has {queued} runs not finished, the quota (ARTDAG_QUOTA_QUEUED_RUNS) is "
                f"{queued_quota}: wait for some to finish",
                field="quota_queued_runs",
            )
        bytes_quota = self.settings.quota_bytes
        if bytes_quota:
            usage: UsageReply = await self.runtime.rpc.call(Cache.usage, UsageRequest(user=owner))
            if usage.bytes >= bytes_quota:
                raise PayloadTooLargeError(
                    f"{owner} holds {usage.bytes:,} bytes, the quota (ARTDAG_QUOTA_BYTES) is {bytes_quota:,}: "
                    "delete some content before running more",
                    field="quota_bytes",
                )

    async def _with_assets(self, recipe: Recipe, inputs: dict[str, str], owner: str | None) -> dict[str, str]:
        """`inputs`, with each unbound input that names an asset bound to that asset's cid (the owner's
        own name first, then a shared one): the plan sees cids only, never names."""
        wanted = {name: spec.asset for name, spec in recipe.inputs.items() if spec.asset and name not in inputs}
        if not wanted:
            return inputs
        request = AssetResolveRequest(names=sorted(set(wanted.values())), owner=owner)
        found = await self.runtime.rpc.call(Cache.asset_resolve, request)
        bound = dict(inputs)
        for name, asset in wanted.items():
            if asset not in found.cids:
                raise InvalidInputError(
                    f"input {name!r} is the asset {asset!r}, which is no name of yours nor a shared one"
                    " (`artdag asset add NAME FILE`, or bind the input to a cid)",
                    field=f"inputs.{name}",
                )
            bound[name] = found.cids[asset]
        return bound

    async def submit(self, request: SubmitRunRequest) -> SubmitRunReply:
        """Accept a run, once per run id: a submit sent again (a client's retry with the same
        Idempotency-Key, a gateway that timed out) answers with the run the first one made."""
        recipe, plan = await self._prepare(request.recipe, request.inputs, request.owner)
        run_id = check_run_id(request.run_id) if request.run_id is not None else new_run_id()
        if request.run_id is not None and (earlier := await self._earlier_submit(run_id, plan, request)) is not None:
            return earlier
        await self._check_quotas(request.owner)
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
        self._plans[run_id] = plan
        # This replica starts the run: it need not read back what it just wrote.
        self._runs[run_id] = _LiveRun(revision, state, plan)
        self.counts["submitted"] += 1
        task = asyncio.create_task(self._start(run_id, plan, recipe, fresh=request.fresh))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        # The run is accepted and starting whatever becomes of this event (it only informs watchers).
        submitted = RunEvent(run_id=run_id, status=RunStatus.PENDING)
        try:
            await self.runtime.publisher.publish(event_message(subjects.run_event(run_id, "submitted"), submitted))
        except TRANSIENT as exc:
            log.warning("run %s: its submitted event was not published (%s)", run_id, exc)
        return SubmitRunReply(run_id=run_id, status=state.status, plan_id=plan.plan_id)

    async def _earlier_submit(self, run_id: str, plan: Plan, request: SubmitRunRequest) -> SubmitRunReply | None:
        """The run an earlier submit made under `run_id`, if any; a different request under it is a conflict."""
        try:
            state = await self.get(RunRequest(run_id=run_id))
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
                    _start_lease(run_id), lease_value(self.runtime.instance, LEASE_ROUNDS * START_LEASE_RENEW_S)
                )
            await asyncio.sleep(START_LEASE_RENEW_S)

    async def _begin(self, run_id: str, plan: Plan, recipe: Recipe, *, fresh: bool) -> None:
        """Start the run; a bus outage meanwhile is waited out (every part of a start may be made
        again), anything else fails the run with its reason."""
        try:
            await outlasting(lambda: self._begin_once(run_id, plan, recipe, fresh=fresh), f"starting run {run_id}")
        except ArtdagError as exc:
            log.warning("run %s could not start: %s", run_id, exc)
            await self._fail(run_id, exc.message, plan)
        except Exception as exc:
            log.exception("run %s could not start", run_id)
            await self._fail(run_id, f"could not start: {exc}", plan)

    async def _begin_once(self, run_id: str, plan: Plan, recipe: Recipe, *, fresh: bool) -> None:
        planned = await self._with_chunks(run_id, plan, recipe)
        replan = planned.plan_id != plan.plan_id
        plan = planned
        rendered = [step.step_id for step in plan.steps if step.node_type != "SOURCE"]
        # The plan is stored while the results are looked up and the first steps run: its cid
        # joins the run's state when it is there, and before the run is announced finished
        # (see `_write`). A fresh run (re-verification) renders everything: nothing is cached.
        storing = asyncio.create_task(self._store_plan(plan))
        self._plans_storing[run_id] = storing
        try:
            cached = {} if fresh else await self._known_results(rendered)
        except BaseException:
            storing.add_done_callback(_retrieved)
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
            await self._update(run_id, begin, plan)
        finally:
            plan_cid = await storing
        crash_point("start:begun")
        if self._plans_storing.pop(run_id, None) is not None:
            await self._update(run_id, lambda state: _note_plan(state, plan_cid), plan)
        self.counts["cached"] += len(cached)
        node_types = {s.step_id: s.node_type for s in plan.steps} if cached else {}
        for step_id in cached:
            STEPS.add(1, {"node_type": node_types[step_id], "outcome": "cached"})
        if exporting():
            span = trace.get_current_span()
            span.set_attribute("artdag.plan_id", plan.plan_id)
            span.set_attribute("artdag.steps", len(rendered))
            span.set_attribute("artdag.steps_cached", len(cached))

    async def _store_plan(self, plan: Plan) -> str:
        """Keep the final plan as content (by CID, like everything else; pinned to IPFS in IPFS-primary mode)."""
        body = canonical_json(plan.model_dump(mode="json"))
        cid = await self.store.put_bytes(body)
        record = ContentRecord(
            cid=cid,
            size=len(body),
            media_type="application/json",
            name=f"plan-{plan.plan_id[:12]}.json",
            origin=ContentOrigin.PLAN,
        )
        await outlasting(
            lambda: self.runtime.rpc.call(Cache.register, record),
            f"registering plan {plan.plan_id[:12]}",
        )
        return cid

    async def _with_chunks(self, run_id: str, plan: Plan, recipe: Recipe) -> Plan:
        """The run's final plan: analyses done, beat-synced cuts expanded, long effects split into chunks."""
        final = await self._final_plan(run_id, plan, recipe)
        if final.plan_id != plan.plan_id:
            await self.book.set_plan(run_id, final)
            self._plans[run_id] = final
        return final

    async def _final_plan(self, label: str, plan: Plan, recipe: Recipe) -> Plan:
        analyses = await self._analyses(plan, recipe) if any(s.type == "ANALYZE" for s in recipe.steps) else None
        needs_media = (
            self._may_chunk(plan)
            or any(s.type == "BEAT_SYNC" for s in recipe.steps)
            or any(has_transition(s.node_type, s.config) for s in plan.steps)
        )
        media = await self._media(label, plan) if needs_media else {}
        if analyses is None and not media:
            return plan
        return build_plan(
            recipe,
            plan.input_cids,
            cluster_key=self.settings.cluster_key_value,
            max_steps=self.settings.max_plan_steps,
            media=media,
            chunking=self.chunking,
            media_types={s.name.removeprefix("input:"): s.media_type for s in plan.steps if s.node_type == "SOURCE"},
            analyses=analyses,
        )

    def _may_chunk(self, plan: Plan) -> bool:
        return self.chunking is not None and any(chunkable(s.node_type, s.config) for s in plan.steps)

    async def _analyses(self, plan: Plan, recipe: Recipe) -> dict[str, AnalysisReply]:
        """Phase 1: ask the analyzer for every ANALYZE step (each answer cached by its analysis id)."""
        replies: dict[str, AnalysisReply] = {}
        for name, request in analysis_requests(plan).items():
            try:
                replies[name] = await self.runtime.rpc.call(Analyzer.analyze, request)
            except ArtdagError as exc:
                raise type(exc)(f"step {name!r} (ANALYZE) failed: {exc.message}", field=exc.field) from None
        return replies

    async def _media(self, label: str, plan: Plan) -> dict[str, MediaInfo]:
        """What the analyzer knows of each input (missing where it cannot tell: bad media, no analyzer)."""
        media: dict[str, MediaInfo] = {}
        for source in [s for s in plan.steps if s.node_type == "SOURCE"]:
            name, cid = source.name.removeprefix("input:"), source.source_cid or ""
            try:
                media[name] = await self.runtime.rpc.call(Analyzer.probe, CidRequest(cid=cid))
            except ArtdagError as exc:
                # Not fatal: the step renders in one piece, and reports bad media itself.
                log.info("%s: no media info for input %r (%s)", label, name, exc)
        return media

    async def _known_results(self, keys: list[str]) -> dict[str, str]:
        """The results known for `keys`: read many keys a request, then whether their bytes are still there."""
        values = await kv_get_many(
            self.runtime.nc, streams.KV_RESULTS.bucket, keys, timeout_s=self.settings.rpc_timeout_s
        )
        recorded = {key: value.decode() for key, value in values.items() if value}
        slots = asyncio.Semaphore(LOOKUPS_IN_FLIGHT)

        async def stored(cid: str) -> bool:
            async with slots:
                return await self.store.exists(cid)

        # A result whose bytes are gone is no result: render it again.
        present = await asyncio.gather(*(stored(cid) for cid in recorded.values()))
        return {key: cid for (key, cid), here in zip(recorded.items(), present, strict=True) if here}

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
            plan = await self._plan(event.run_id)
        except NotFoundError:
            log.warning("event for unknown run %s", event.run_id)
            plan = None
        try:
            if plan is not None:
                await self._update(
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
            await self.registrar.register(record)
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

    async def _fail(self, run_id: str, error: str, plan: Plan) -> None:
        def fail(state: RunState) -> None:
            if not state.status.finished:
                state.status = RunStatus.FAILED
                state.error = error

        await self._update(run_id, fail, plan)

    async def _plan(self, run_id: str) -> Plan:
        plan = self._plans.get(run_id)
        if plan is None:
            plan = await self.book.plan(run_id)
            self._plans[run_id] = plan
        return plan

    async def _update(
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
                done.add_done_callback(_retrieved)
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
        self._plans.pop(run_id, None)
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
                await self.runtime.publisher.publish_many([self._task_message(live.state, step) for step in batch])
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
        storing = self._plans_storing.pop(run_id, None) if live.state.status.finished else None
        if storing is not None:
            # The run is done before its plan was stored (a small or cached run): it is announced with it.
            with contextlib.suppress(Exception):
                _note_plan(live.state, await storing)
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
            await outlasting(lambda: self.runtime.rpc.call(Cache.hold, hold), f"holding the output of {run_id}")
        except Exception as exc:  # noqa: BLE001 - the cache records it from the run's RunFinished, a moment later
            log.warning("run %s: output %s not held for %s yet (%s)", run_id, state.output_cid, state.owner, exc)

    async def _publish_finished(self, live: _LiveRun, state: RunState) -> None:
        """The run's one `RunFinished`, from the write that makes its final state complete (a
        completed run's may come from another replica's later write: see `completion.unsettled`)."""
        if state.status == RunStatus.COMPLETED and unsettled(state):
            return
        live.finish_published = True
        await self.runtime.publisher.publish(finished_message(state))

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
        await self.runtime.publisher.publish(
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

    # -- the 3-phase API: plan (dry run), execute a plan, cancel ---------------------------

    async def _recipe_text(self, recipe: str | None, recipe_id: str | None) -> str:
        if (recipe is None) == (recipe_id is None):
            raise InvalidInputError("give either a recipe (YAML text) or a recipe_id", field="recipe")
        return recipe if recipe is not None else (await self.recipes.get(str(recipe_id))).text

    async def dry_run(self, request: PlanRequest) -> PlanReply:
        """The plan a run would follow: each step cached or to run, and the frames left to render."""
        text = await self._recipe_text(request.recipe, request.recipe_id)
        recipe, plan = await self._prepare(text, request.inputs, request.owner)
        plan = await self._final_plan(f"plan {plan.plan_id[:12]}", plan, recipe)
        media = await self._media(f"plan {plan.plan_id[:12]}", plan)
        frames = encoded_frames(plan, output_frames := estimate_frames(plan, media))
        known = await self._known_results([step.step_id for step in plan.steps if step.node_type != "SOURCE"])
        steps: list[PlannedStep] = []
        for step in plan.steps:
            if step.node_type == "SOURCE":
                status: Literal["cached", "to-run", "input"] = "input"
            else:
                status = "cached" if step.step_id in known else "to-run"
            steps.append(
                PlannedStep(
                    step_id=step.step_id,
                    name=step.name,
                    node_type=step.node_type,
                    level=step.level,
                    status=status,
                    frames=frames.get(step.step_id),
                    handoff=step.handoff,
                    covers=step.covers,
                )
            )
        await self.book.save_plan(plan, text, dict(request.inputs), request.owner)
        to_run = [s for s in steps if s.status == "to-run"]
        return PlanReply(
            plan=plan,
            steps=steps,
            to_run=len(to_run),
            cached=sum(s.status == "cached" for s in steps),
            cost_frames=sum(s.frames or 0 for s in to_run),
            frames_encoded=(total := sum(frames.values())),
            output_frames=(out := output_frames.get(plan.output_step, 0)),
            encodes_per_output_frame=round(total / out, 3) if out else None,
        )

    async def execute(self, request: ExecuteRequest) -> SubmitRunReply:
        """Run a plan made earlier by a dry run (re-planned from its recipe: a plan is never trusted)."""
        recipe_text, inputs = await self.book.saved_plan(request.plan_id, request.owner)
        return await self.submit(
            SubmitRunRequest(recipe=recipe_text, inputs=inputs, owner=request.owner, run_id=request.run_id)
        )

    async def cancel(self, request: RunRequest) -> RunState:
        """Stop dispatching, tell executors to drop the run's steps, then delete the run's record."""
        run_id = check_run_id(request.run_id)
        state = await self.get(request)
        if not state.status.finished:
            plan = await self._plan(run_id)

            def cancel(live: RunState) -> None:
                if not live.status.finished:
                    live.status = RunStatus.CANCELLED
                    live.error = "cancelled"

            await self._update(run_id, cancel, plan)
            self.counts["cancelled"] += 1
            state = await self.get(request)
        await self.book.delete(run_id)
        with contextlib.suppress(KeyNotFoundError):
            await self.runs.purge(run_id)
        self._plans.pop(run_id, None)
        return state

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
                    self.claims, RECOVERY_LEASE, self.runtime.instance, LEASE_ROUNDS * every_s
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
                    if run_id in self._runs_starting() or await self._being_started(run_id):
                        continue  # a planner is starting it (a long analysis, say)
                    try:
                        recipe_text = await self.book.recipe_text(run_id)
                    except NotFoundError:
                        # Its submit stopped between the two writes: it was never accepted.
                        log.warning("run %s has no record (its submit did not finish); dropping it", run_id)
                        await self._drop_unrecorded(run_id, entry.revision)
                        continue
                    log.info("run %s was never started; starting it", run_id)
                    self.counts["recovered"] += 1
                    await self._start(run_id, await self._plan(run_id), parse_recipe(recipe_text))

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

    def _runs_starting(self) -> set[str]:
        return set(self._plans_storing)

    async def _being_started(self, run_id: str) -> bool:
        return self.claims is not None and await held_by_anyone(self.claims, _start_lease(run_id))

    # -- recipes --------------------------------------------------------------------------

    async def run_recipe_text(self, request: RunRequest) -> RecipeUpload:
        return RecipeUpload(text=await self.book.recipe_text(check_run_id(request.run_id)))

    async def recipe_upload(self, request: RecipeUpload) -> RecipeRecord:
        return await self.recipes.upload(request.text, owner=request.owner)

    async def recipe_get(self, request: RecipeRequest) -> RecipeRecord:
        return await self.recipes.get(request.recipe_id, request.viewer)

    async def recipe_list(self, request: ListRunsRequest) -> RecipeList:
        recipes, total = await self.recipes.list(request.limit, request.offset, request.viewer)
        return RecipeList(recipes=recipes, total=total)

    async def recipe_delete(self, request: RecipeRequest) -> RecipeRecord:
        record = await self.recipes.get(request.recipe_id, request.viewer)
        await self.recipes.delete(record.recipe_id, request.viewer)
        return record

    async def recipe_run(self, request: RunRecipeRequest) -> SubmitRunReply:
        record = await self.recipes.get(request.recipe_id)
        return await self.submit(
            SubmitRunRequest(recipe=record.text, inputs=request.inputs, owner=request.owner, run_id=request.run_id)
        )

    # -- queries --------------------------------------------------------------------------

    async def get(self, request: RunRequest) -> RunState:
        run_id = check_run_id(request.run_id)
        live = await self._live_state(run_id)
        return live if live is not None else await self.book.get(run_id)

    async def analysis(self, request: RunRequest) -> RunAnalysis:
        """The analyses a run's plan used, by ANALYZE step name."""
        plan = await self._plan(check_run_id(request.run_id))
        found: dict[str, dict[str, Any]] = {}
        for step in plan.steps:
            if step.node_type == "ANALYZE" and step.source_cid:
                body = b"".join([chunk async for chunk in self.store.read(step.source_cid)])
                found[step.name] = {
                    "features": step.config["features"],
                    "params": step.config.get("params", {}),
                    "result_cid": step.source_cid,
                    "result": json.loads(body),
                }
        return RunAnalysis(run_id=request.run_id, analyses=found)

    async def plan(self, request: RunRequest) -> Plan:
        return await self._plan(check_run_id(request.run_id))

    async def list(self, request: ListRunsRequest) -> RunList:
        runs, total = await self.book.list(request.limit, request.offset, request.viewer)
        # The table follows a run at each change of status; how far a live run got is in the KV.
        live = [i for i, run in enumerate(runs) if not run.status.finished]
        states = await asyncio.gather(*(self._live_state(runs[i].run_id) for i in live))
        for i, state in zip(live, states, strict=True):
            if state is not None:
                runs[i] = runs[i].model_copy(
                    update={"status": state.status, "started_at": state.started_at, "steps": state.step_counts()}
                )
        return RunList(runs=runs, total=total)

    async def _live_state(self, run_id: str) -> RunState | None:
        try:
            entry = await self.runs.get(run_id)
        except KeyNotFoundError:
            return None
        return RunState.model_validate_json(unpack(entry.value or b"{}"))


async def start(runtime: ServiceRuntime, settings: PlannerSettings) -> None:
    engine = make_engine(settings.effective_database_url)
    runtime.stack.push_async_callback(dispose_engine, engine)
    sessions = session_factory(engine)
    recipes = RecipeBook(sessions)
    for name, text in example_recipes().items():
        try:
            await recipes.upload(text, example=True)
        except (ArtdagError, IntegrityError) as exc:  # another replica registered it at the same moment
            log.debug("example %s: %s", name, exc)
    driver = RunDriver(
        runtime,
        settings,
        RunBook(sessions),
        recipes,
        await runtime.js.key_value(streams.KV_RUNS.bucket),
        await open_store_async(settings, runtime.stack, nc=runtime.nc),
        await runtime.js.key_value(streams.KV_CLAIMS.bucket),
    )
    runtime.health_details = lambda: dict(driver.counts)
    await rpc.serve(runtime.nc, Planner.submit, driver.submit, concurrency=SUBMITS_IN_FLIGHT)
    await rpc.serve(runtime.nc, Planner.get_run, driver.get)
    await rpc.serve(runtime.nc, Planner.list_runs, driver.list)
    await rpc.serve(runtime.nc, Planner.get_plan, driver.plan)
    await rpc.serve(runtime.nc, Planner.get_analysis, driver.analysis)
    await rpc.serve(runtime.nc, Planner.get_run_recipe, driver.run_recipe_text)
    await rpc.serve(runtime.nc, Planner.cancel, driver.cancel)
    await rpc.serve(runtime.nc, Planner.dry_run, driver.dry_run)
    await rpc.serve(runtime.nc, Planner.execute, driver.execute, concurrency=SUBMITS_IN_FLIGHT)
    await rpc.serve(runtime.nc, Planner.recipe_upload, driver.recipe_upload)
    await rpc.serve(runtime.nc, Planner.recipe_get, driver.recipe_get)
    await rpc.serve(runtime.nc, Planner.recipe_list, driver.recipe_list)
    await rpc.serve(runtime.nc, Planner.recipe_delete, driver.recipe_delete)
    await rpc.serve(runtime.nc, Planner.recipe_run, driver.recipe_run, concurrency=SUBMITS_IN_FLIGHT)

    async def on_event(msg: Msg) -> None:
        try:
            event = decode(StepEvent, msg.data)
        except ValidationError as exc:
            log.warning("dropping malformed step event on %s: %s", msg.subject, exc.errors()[0]["msg"])
            await msg.term()
            return
        try:
            if exporting():
                # Only for an exported trace: the planner's part in the run, under the step that sent the event.
                with _tracer.start_as_current_span(
                    f"step event {event.status.value}",
                    context=extract_context(msg.headers),
                    attributes={RUN_ID: event.run_id, STEP_ID: event.step_id},
                ):
                    await driver.on_step_event(event)
            else:
                await driver.on_step_event(event)
        except Exception:
            log.exception("step event for run %s not applied; will retry", event.run_id)
            await msg.nak(delay=1.0)
            return
        await msg.ack()

    # Many events in flight: those of one run queue up and are written together (see `_update`).
    runtime.run_consumer(streams.PLANNER_STEP_EVENTS, on_event, concurrency=EVENTS_IN_FLIGHT)
    for workers in (streams.STEP_WORKERS, streams.INLINE_STEP_WORKERS):
        await watch_dead_letters(
            runtime.nc,
            runtime.js,
            workers.stream,
            workers.durable,
            driver.on_dead_letter,
            queue=subjects.rpc_queue("planner"),
        )
    recovery = asyncio.create_task(driver.keep_recovering(settings.recover_every_s))
    runtime.stack.callback(recovery.cancel)
