from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any, Literal

from nats.aio.msg import Msg
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from artdag_common import rpc, streams, subjects
from artdag_common.bus import decode, watch_dead_letters
from artdag_common.content_store import ContentStore, open_store_async
from artdag_common.contracts import Planner
from artdag_common.db import dispose_engine, make_engine, session_factory
from artdag_common.errors import ArtdagError, InvalidInputError
from artdag_common.examples import example_recipes
from artdag_common.ids import check_run_id
from artdag_common.registration import Registrar
from artdag_common.runtime import ServiceRuntime
from artdag_common.schemas import (
    ExecuteRequest,
    ListRunsRequest,
    Plan,
    PlannedStep,
    PlanReply,
    PlanRequest,
    RecipeList,
    RecipeRecord,
    RecipeRequest,
    RecipeUpload,
    RunAnalysis,
    RunList,
    RunRecipeRequest,
    RunRequest,
    RunState,
    RunStatus,
    StepEvent,
    SubmitRunReply,
    SubmitRunRequest,
)
from artdag_common.telemetry import RUN_ID, STEP_ID, exporting, extract_context, tracer
from services.planner.derived import DerivedMedia
from services.planner.engine import RunEngine
from services.planner.planning import encoded_frames, estimate_frames
from services.planner.preparation import Preparation
from services.planner.recipes import RecipeBook
from services.planner.runs import RunBook
from services.planner.settings import PlannerSettings
from services.planner.submission import Submissions

log = logging.getLogger(__name__)
_tracer = tracer(__name__)

# Step events handled at once by one replica (bounded by the consumer's max_ack_pending).
EVENTS_IN_FLIGHT = 256
# Submits answered at once (each waits on the database and the bus, not the CPU): one at a time,
# a burst of them outlasted the gateway's patience.
SUBMITS_IN_FLIGHT = 16
# Derived-media requests answered at once: each waits on its run's events, not on this process.
DERIVES_IN_FLIGHT = 64
# What the health reply counts (the parts add to one set of counters).
COUNTERS = ("submitted", "completed", "failed", "cancelled", "dispatched", "cached", "recovered", "merged")


class PlannerApi:
    """The planner's verbs beside submit: queries, recipes, the 3-phase API (plan, execute) and cancel."""

    def __init__(
        self,
        book: RunBook,
        recipes: RecipeBook,
        runs: KeyValue,
        store: ContentStore,
        preparation: Preparation,
        submissions: Submissions,
        engine: RunEngine,
    ) -> None:
        self.book = book
        self.recipes = recipes
        self.runs = runs
        self.store = store
        self.preparation = preparation
        self.submissions = submissions
        self.engine = engine

    # -- the 3-phase API: plan (dry run), execute a plan, cancel ---------------------------

    async def _recipe_text(self, recipe: str | None, recipe_id: str | None) -> str:
        if (recipe is None) == (recipe_id is None):
            raise InvalidInputError(
                "give either a recipe (its YAML or S-expression text) or a recipe_id", field="recipe"
            )
        return recipe if recipe is not None else (await self.recipes.get(str(recipe_id))).text

    async def dry_run(self, request: PlanRequest) -> PlanReply:
        """The plan a run would follow: each step cached or to run, and the frames left to render."""
        text = await self._recipe_text(request.recipe, request.recipe_id)
        recipe, plan = await self.preparation.prepare(text, request.inputs, request.owner, request.viewer)
        plan = await self.preparation.final_plan(f"plan {plan.plan_id[:12]}", plan, recipe)
        media = await self.preparation.media(f"plan {plan.plan_id[:12]}", plan)
        frames = encoded_frames(plan, output_frames := estimate_frames(plan, media))
        known = await self.preparation.known_results(
            [step.step_id for step in plan.steps if step.node_type != "SOURCE"]
        )
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
        return await self.submissions.submit(
            SubmitRunRequest(recipe=recipe_text, inputs=inputs, owner=request.owner, run_id=request.run_id)
        )

    async def cancel(self, request: RunRequest) -> RunState:
        """Stop dispatching, tell executors to drop the run's steps, then delete the run's record."""
        run_id = check_run_id(request.run_id)
        state = await self.get(request)
        if not state.status.finished:
            plan = await self.engine.plan(run_id)

            def cancel(live: RunState) -> None:
                if not live.status.finished:
                    live.status = RunStatus.CANCELLED
                    live.error = "cancelled"

            await self.engine.update(run_id, cancel, plan)
            self.engine.counts["cancelled"] += 1
            state = await self.get(request)
        await self.book.delete(run_id)
        with contextlib.suppress(KeyNotFoundError):
            await self.runs.purge(run_id)
        self.engine.plans.pop(run_id, None)
        return state

    # -- recipes --------------------------------------------------------------------------

    async def run_recipe_text(self, request: RunRequest) -> RecipeUpload:
        return RecipeUpload(text=await self.book.recipe_text(check_run_id(request.run_id)))

    async def recipe_upload(self, request: RecipeUpload) -> RecipeRecord:
        await self.preparation.load_effects(request.text)
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
        return await self.submissions.submit(
            SubmitRunRequest(
                recipe=record.text,
                inputs=request.inputs,
                owner=request.owner,
                run_id=request.run_id,
                viewer=request.viewer,
            )
        )

    # -- queries --------------------------------------------------------------------------

    async def get(self, request: RunRequest) -> RunState:
        return await self.engine.state(check_run_id(request.run_id))

    async def analysis(self, request: RunRequest) -> RunAnalysis:
        """The analyses a run's plan used, by ANALYZE step name."""
        plan = await self.engine.plan(check_run_id(request.run_id))
        found: dict[str, dict[str, Any]] = {}
        for step in plan.steps:
            if step.node_type == "ANALYZE" and step.source_cid:
                body = await self.store.get_bytes(step.source_cid)
                found[step.name] = {
                    "features": step.config["features"],
                    "params": step.config.get("params", {}),
                    "result_cid": step.source_cid,
                    "result": json.loads(body),
                }
        return RunAnalysis(run_id=request.run_id, analyses=found)

    async def plan(self, request: RunRequest) -> Plan:
        return await self.engine.plan(check_run_id(request.run_id))

    async def list(self, request: ListRunsRequest) -> RunList:
        runs, total = await self.book.list(request.limit, request.offset, request.viewer)
        # The table follows a run at each change of status; how far a live run got is in the KV.
        live = [i for i, run in enumerate(runs) if not run.status.finished]
        states = await asyncio.gather(*(self.engine.written_state(runs[i].run_id) for i in live))
        for i, state in zip(live, states, strict=True):
            if state is not None:
                runs[i] = runs[i].model_copy(
                    update={"status": state.status, "started_at": state.started_at, "steps": state.step_counts()}
                )
        return RunList(runs=runs, total=total)


async def start(runtime: ServiceRuntime, settings: PlannerSettings) -> None:
    db = make_engine(settings.effective_database_url)
    runtime.stack.push_async_callback(dispose_engine, db)
    sessions = session_factory(db)
    recipes = RecipeBook(sessions)
    for name, text in example_recipes().items():
        try:
            await recipes.upload(text, example=True)
        except (ArtdagError, IntegrityError) as exc:  # another replica registered it at the same moment
            log.debug("example %s: %s", name, exc)
    book = RunBook(sessions)
    runs = await runtime.js.key_value(streams.KV_RUNS.bucket)
    store = await open_store_async(settings, runtime.stack, nc=runtime.nc)
    claims = await runtime.js.key_value(streams.KV_CLAIMS.bucket)
    registrar = Registrar(runtime.nc, timeout_s=settings.rpc_timeout_s)
    counts = dict.fromkeys(COUNTERS, 0)
    engine = RunEngine(runs, runtime.publisher, book, runtime.rpc, registrar.register, counts=counts)
    preparation = Preparation(settings, runtime.rpc, runtime.nc, book, store)
    submissions = Submissions(runtime.instance, runtime.publisher, book, runs, preparation, engine, claims)
    api = PlannerApi(book, recipes, runs, store, preparation, submissions, engine)
    runtime.health_details = lambda: dict(engine.counts)
    await rpc.serve(runtime.nc, Planner.submit, submissions.submit, concurrency=SUBMITS_IN_FLIGHT)
    await rpc.serve(runtime.nc, Planner.get_run, api.get)
    await rpc.serve(runtime.nc, Planner.list_runs, api.list)
    await rpc.serve(runtime.nc, Planner.get_plan, api.plan)
    await rpc.serve(runtime.nc, Planner.get_analysis, api.analysis)
    await rpc.serve(runtime.nc, Planner.get_run_recipe, api.run_recipe_text)
    await rpc.serve(runtime.nc, Planner.cancel, api.cancel)
    await rpc.serve(runtime.nc, Planner.dry_run, api.dry_run)
    await rpc.serve(runtime.nc, Planner.execute, api.execute, concurrency=SUBMITS_IN_FLIGHT)
    await rpc.serve(runtime.nc, Planner.recipe_upload, api.recipe_upload)
    await rpc.serve(runtime.nc, Planner.recipe_get, api.recipe_get)
    await rpc.serve(runtime.nc, Planner.recipe_list, api.recipe_list)
    await rpc.serve(runtime.nc, Planner.recipe_delete, api.recipe_delete)
    await rpc.serve(runtime.nc, Planner.recipe_run, api.recipe_run, concurrency=SUBMITS_IN_FLIGHT)
    # Each request may wait for its file (up to MAX_DERIVE_WAIT_S): many at once, each mostly idle.
    derived = DerivedMedia(runtime.nc, api.get, submissions.submit)
    await rpc.serve(runtime.nc, Planner.derive, derived.derive, concurrency=DERIVES_IN_FLIGHT)

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
                    await engine.on_step_event(event)
            else:
                await engine.on_step_event(event)
        except Exception:
            log.exception("step event for run %s not applied; will retry", event.run_id)
            await msg.nak(delay=1.0)
            return
        await msg.ack()

    # Many events in flight: those of one run queue up and are written together (see `RunEngine.update`).
    runtime.run_consumer(streams.PLANNER_STEP_EVENTS, on_event, concurrency=EVENTS_IN_FLIGHT)
    for workers in (streams.STEP_WORKERS, streams.INLINE_STEP_WORKERS):
        await watch_dead_letters(
            runtime.nc,
            runtime.js,
            workers.stream,
            workers.durable,
            engine.on_dead_letter,
            queue=subjects.rpc_queue("planner"),
        )
    recovery = asyncio.create_task(submissions.keep_recovering(settings.recover_every_s))
    runtime.stack.callback(recovery.cancel)
