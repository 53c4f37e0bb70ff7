"""Runs: the state machine a run follows, and the `runs` table the planner owns."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from artdag_common.db import transact
from artdag_common.db.tables import PlanRow, Run
from artdag_common.errors import NotFoundError
from artdag_common.schemas import (
    Plan,
    PlanStep,
    RunState,
    RunStatus,
    RunSummary,
    StepCounts,
    StepEvent,
    StepState,
    StepStatus,
    Viewer,
    now,
)


def new_run_state(run_id: str, plan: Plan) -> RunState:
    """A pending run: sources and analyses are already done (their output is the input's or result's cid)."""
    steps = {
        s.step_id: StepState(
            name=s.name,
            node_type=s.node_type,
            inputs=list(s.inputs),
            status=StepStatus.COMPLETED if s.source_cid is not None else StepStatus.PENDING,
            output_cid=s.source_cid,
        )
        for s in plan.steps
    }
    return RunState(
        run_id=run_id,
        recipe_id=plan.recipe_id,
        recipe_name=plan.recipe_name,
        plan_id=plan.plan_id,
        inputs=dict(plan.input_cids),
        steps=steps,
        output_step=plan.output_step,
    )


def ready_steps(state: RunState, plan: Plan) -> list[PlanStep]:
    """Pending steps whose inputs are all done: dispatch these (dependency-driven, no levels)."""
    if state.status.finished:
        return []
    pending = [
        s for s in plan.steps if s.step_id in state.steps and state.steps[s.step_id].status == StepStatus.PENDING
    ]
    return [s for s in pending if all(i in state.steps and state.steps[i].status.done for i in s.inputs)]


def apply_step_event(state: RunState, event: StepEvent) -> bool:
    """Fold a step event into the run; False if it changes nothing (duplicate, stale)."""
    step = state.steps.get(event.step_id)
    if step is None or step.status.done:
        return False
    if state.status.finished:
        # A step done after its run finished (another replica announced the run first, or the
        # run failed elsewhere): the step's outcome is kept, the run's stays as it is.
        if not event.status.done:
            return False
        step.status, step.output_cid = event.status, event.output_cid
        step.worker, step.elapsed_s = event.worker or step.worker, event.elapsed_s
        return True
    if event.status == StepStatus.RUNNING and step.status == StepStatus.RUNNING:
        return False
    step.status = event.status
    step.worker = event.worker or step.worker
    step.elapsed_s = event.elapsed_s
    if event.status.done:
        step.output_cid = event.output_cid
    if event.status == StepStatus.FAILED:
        step.error = event.error
        state.status = RunStatus.FAILED
        state.error = f"step {step.name!r} ({step.node_type}) failed: {event.error}"
    elif state.status == RunStatus.PENDING:
        state.status = RunStatus.RUNNING
    state.updated_at = now()
    finish_if_done(state)
    return True


# How far a step got: two replicas' views of it merge to the further one.
_PROGRESS = {
    StepStatus.PENDING: 0,
    StepStatus.QUEUED: 1,
    StepStatus.RUNNING: 2,
    StepStatus.COMPLETED: 3,
    StepStatus.CACHED: 3,
    StepStatus.FAILED: 3,
}


def merge_states(base: RunState, other: RunState) -> RunState:
    """Two replicas' views of one run, as one: `base` (the one on the run's final plan) with every
    step as far as either view got it, the run finished if either finished it, its plan's cid
    if either knows it. Either may be stale: nothing either learnt is lost."""
    merged = base.model_copy()
    merged.steps = dict(base.steps)
    for step_id, theirs in other.steps.items():
        ours = merged.steps.get(step_id)
        if ours is not None and _PROGRESS[theirs.status] > _PROGRESS[ours.status]:
            merged.steps[step_id] = theirs.model_copy()
    if other.status.finished and not merged.status.finished:
        merged.status, merged.error, merged.output_cid = other.status, other.error, other.output_cid
        merged.finished_at = other.finished_at
    elif merged.status == RunStatus.PENDING and other.status == RunStatus.RUNNING:
        merged.status = RunStatus.RUNNING
    merged.plan_cid = merged.plan_cid or other.plan_cid
    merged.started_at = min((t for t in (base.started_at, other.started_at) if t is not None), default=None)
    merged.updated_at = max(base.updated_at, other.updated_at)
    finish_if_done(merged)
    stamp_times(merged)
    return merged


def stamp_times(state: RunState) -> None:
    """Note when the run started (left pending) and finished, the first time it does."""
    if state.started_at is None and state.status != RunStatus.PENDING:
        state.started_at = state.updated_at
    if state.finished_at is None and state.status.finished:
        state.finished_at = state.updated_at


def finish_if_done(state: RunState) -> bool:
    """Complete the run once its output step is done; True if it just finished."""
    if state.status.finished or state.output_step is None:
        return False
    out = state.steps[state.output_step]
    if out.status.done:
        state.status = RunStatus.COMPLETED
        state.output_cid = out.output_cid
        state.updated_at = now()
        return True
    return False


def _progress_columns(state: RunState) -> dict[str, Any]:
    """The `runs` columns that follow a run's progress: its times and its steps by outcome."""
    counts = state.step_counts()
    return {
        "started_at": state.started_at,
        "finished_at": state.finished_at,
        "steps_total": counts.total,
        "steps_done": counts.done,
        "steps_cached": counts.cached,
        "steps_failed": counts.failed,
    }


class RunBook:
    """The `runs` table: what must outlive the bus's KV (history, listings)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    # Creating and saving runs are on every run's path: one transaction each, at one hop (`transact`).
    async def create(self, state: RunState, recipe_text: str, plan: Plan) -> None:
        row = Run(
            run_id=state.run_id,
            status=state.status.value,
            recipe_id=state.recipe_id,
            recipe_name=state.recipe_name,
            recipe_text=recipe_text,
            plan_id=state.plan_id,
            inputs=state.inputs,
            plan=plan.model_dump(mode="json"),
            state=state.model_dump(mode="json"),
            output_cid=state.output_cid,
            error=state.error,
            owner=state.owner,
            created_at=state.created_at,
            updated_at=state.updated_at,
            **_progress_columns(state),
        )
        await transact(self._sessions, lambda session: session.add(row))

    @staticmethod
    def record(state: RunState) -> dict[str, Any]:
        """The columns `save_record` writes, taken now (a live run's state moves on before they are written)."""
        return {
            "status": state.status.value,
            "output_cid": state.output_cid,
            "error": state.error,
            "updated_at": state.updated_at,
            "state": state.model_dump(mode="json"),
            **_progress_columns(state),
        }

    async def save_record(self, run_id: str, values: dict[str, Any]) -> None:
        def save(session: Session) -> None:
            result = cast(CursorResult[Any], session.execute(update(Run).where(Run.run_id == run_id).values(**values)))
            if result.rowcount == 0:
                raise NotFoundError(f"no run {run_id}", field="run_id")

        await transact(self._sessions, save)

    async def set_plan(self, run_id: str, plan: Plan) -> None:
        async with self._sessions.begin() as session:
            row = await session.get(Run, run_id)
            if row is None:
                raise NotFoundError(f"no run {run_id}", field="run_id")
            row.plan = plan.model_dump(mode="json")
            row.plan_id = plan.plan_id

    async def delete(self, run_id: str) -> None:
        async with self._sessions.begin() as session:
            row = await session.get(Run, run_id)
            if row is None:
                raise NotFoundError(f"no run {run_id}", field="run_id")
            await session.delete(row)

    async def recipe_text(self, run_id: str) -> str:
        async with self._sessions() as session:
            row = await session.get(Run, run_id)
            if row is None:
                raise NotFoundError(f"no run {run_id}", field="run_id")
            return row.recipe_text

    async def save_plan(self, plan: Plan, recipe_text: str, inputs: dict[str, str], owner: str | None = None) -> None:
        async with self._sessions.begin() as session:
            row = await session.get(PlanRow, plan.plan_id)
            if row is None:
                session.add(
                    PlanRow(
                        plan_id=plan.plan_id,
                        recipe_text=recipe_text,
                        inputs=inputs,
                        plan=plan.model_dump(mode="json"),
                        owner=owner,
                        created_at=now(),
                    )
                )
            elif row.owner is not None and row.owner != owner:
                row.owner = None  # planned by several users: the same plan, anyone who made it may run it

    async def saved_plan(self, plan_id: str, owner: str | None = None) -> tuple[str, dict[str, str]]:
        """A dry run's recipe and inputs; with `owner`, a plan another user made is not found."""
        if len(plan_id) > 64:
            raise NotFoundError("not a plan id", field="plan_id")
        async with self._sessions() as session:
            row = await session.get(PlanRow, plan_id)
            if row is None or (owner is not None and row.owner is not None and row.owner != owner):
                raise NotFoundError(f"no plan {plan_id} (make one with POST /api/plan)", field="plan_id")
            return row.recipe_text, dict(row.inputs)

    async def get(self, run_id: str) -> RunState:
        async with self._sessions() as session:
            row = await session.get(Run, run_id)
            if row is None or row.state is None:
                raise NotFoundError(f"no run {run_id}", field="run_id")
            return RunState.model_validate(row.state)

    async def plan(self, run_id: str) -> Plan:
        async with self._sessions() as session:
            row = await session.get(Run, run_id)
            if row is None or row.plan is None:
                raise NotFoundError(f"no run {run_id}", field="run_id")
            return Plan.model_validate(row.plan)

    async def unfinished(self, owner: str) -> int:
        """How many of `owner`'s runs are pending or running."""
        query = (
            select(func.count())
            .select_from(Run)
            .where(Run.owner == owner, Run.status.in_([RunStatus.PENDING.value, RunStatus.RUNNING.value]))
        )
        async with self._sessions() as session:
            return int((await session.execute(query)).scalar_one())

    async def list(self, limit: int, offset: int, viewer: Viewer | None = None) -> tuple[list[RunSummary], int]:
        """Runs newest first; with a non-admin `viewer`, only theirs."""
        count = select(func.count()).select_from(Run)
        query = select(Run).order_by(Run.created_at.desc())
        if viewer is not None and not viewer.admin:
            count = count.where(Run.owner == viewer.user)
            query = query.where(Run.owner == viewer.user)
        async with self._sessions() as session:
            total = (await session.execute(count)).scalar_one()
            rows = (await session.execute(query.limit(limit).offset(offset))).scalars().all()
            return [
                RunSummary(
                    run_id=r.run_id,
                    status=RunStatus(r.status),
                    recipe_name=r.recipe_name,
                    output_cid=r.output_cid,
                    owner=r.owner,
                    created_at=r.created_at,
                    updated_at=r.updated_at,
                    started_at=r.started_at,
                    finished_at=r.finished_at,
                    steps=StepCounts(
                        total=r.steps_total, done=r.steps_done, cached=r.steps_cached, failed=r.steps_failed
                    ),
                )
                for r in rows
            ], total


class StateEncoder:
    """A run's state as stored in the KV, re-serialising only the steps that changed.

    The whole state is written on every change; with thousands of steps, turning every
    step into JSON each time would dominate. Each step's JSON is kept, and dropped when
    the caller says the step is dirty (or all of them, after the state was read afresh).
    The result is the same JSON object `model_dump_json` gives (keys in another order).
    """

    def __init__(self) -> None:
        self._fragments: dict[str, bytes] = {}

    def encode(self, state: RunState, dirty: Iterable[str] | None) -> bytes:
        if dirty is None:
            self._fragments.clear()
        else:
            for step_id in dirty:
                self._fragments.pop(step_id, None)
        parts: list[bytes] = []
        for step_id, step in state.steps.items():
            fragment = self._fragments.get(step_id)
            if fragment is None:
                fragment = json.dumps(step_id).encode() + b":" + step.model_dump_json().encode()
                self._fragments[step_id] = fragment
            parts.append(fragment)
        head = state.model_dump_json(exclude={"steps"}).encode()
        return head[:-1] + b',"steps":{' + b",".join(parts) + b"}}"
