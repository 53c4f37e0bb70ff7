"""Runs and their steps: plans, step tasks and events, a run's live state, and the planner's requests
(submit, list, dry run, execute)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from artdag_common.schemas.common import MAX_OFFSET, Message, Viewer, now
from artdag_common.schemas.content import ContentRecord

# -- plans -----------------------------------------------------------------------------


class PlanStep(BaseModel):
    """One node of a plan: what to run, on which inputs, under which cache id."""

    model_config = ConfigDict(extra="ignore")

    step_id: str
    name: str
    node_type: str
    config: dict[str, Any] = Field(default_factory=dict)
    inputs: list[str] = Field(default_factory=list, description="step ids, in order")
    op_version: str
    source_cid: str | None = Field(default=None, description="for SOURCE steps: the input's cid")
    level: int = Field(default=0, ge=0, description="0 for sources, else 1 + the deepest input's level")
    media_type: str = Field(default="video/mp4", description="what the step's output is")
    handoff: Literal["deliver", "part", "lossless"] = Field(
        default="deliver",
        description="how the output is encoded: deliver (the run's output), part (copied into a delivered "
        "file later), lossless (decoded by a later step)",
    )
    covers: list[str] = Field(
        default_factory=list, description="a fused step (CHAIN): the names of the recipe's nodes it renders, in order"
    )


class Plan(BaseModel):
    """A recipe bound to concrete inputs: steps in topological order."""

    model_config = ConfigDict(extra="ignore")

    plan_id: str
    recipe_id: str
    recipe_name: str
    input_cids: dict[str, str]
    steps: list[PlanStep]
    output_step: str


# -- runs and steps --------------------------------------------------------------------


class StepStatus(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    CACHED = "cached"
    FAILED = "failed"

    @property
    def done(self) -> bool:
        return self in (StepStatus.COMPLETED, StepStatus.CACHED)


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)


class StepTask(Message):
    """`artdag.task.step`: render one step; inputs are given by cid, in order."""

    run_id: str
    step: PlanStep
    input_cids: list[str]
    input_names: list[str] = Field(default_factory=list, description="what the recipe calls each input")
    fresh: bool = Field(default=False, description="render even if a result is recorded (re-verification)")


class StepEvent(Message):
    """`artdag.event.step.<run>.<step>`: a step started, finished, hit the cache or failed."""

    run_id: str
    step_id: str
    status: StepStatus
    output_cid: str | None = None
    error: str | None = None
    worker: str | None = None
    elapsed_s: float | None = None
    at: float = Field(default_factory=now)
    output: ContentRecord | None = Field(
        default=None,
        description="a completed step's output metadata: the planner registers it with the cache "
        "before the run's state shows the step done",
    )


class RunEvent(Message):
    """`artdag.event.run.<run>.<status>`: a run changed state."""

    run_id: str
    status: RunStatus
    output_cid: str | None = None
    error: str | None = None
    at: float = Field(default_factory=now)


class StepState(BaseModel):
    """A step as a run sees it."""

    model_config = ConfigDict(extra="ignore")

    name: str
    node_type: str
    inputs: list[str] = Field(default_factory=list)
    status: StepStatus = StepStatus.PENDING
    output_cid: str | None = None
    error: str | None = None
    worker: str | None = None
    elapsed_s: float | None = None


class RunState(Message):
    """The live state of a run (KV `runs`, and the body of `GET /runs/{id}`)."""

    run_id: str
    status: RunStatus = RunStatus.PENDING
    recipe_id: str
    recipe_name: str
    plan_id: str | None = None
    plan_cid: str | None = Field(default=None, description="the final plan as JSON in the content store")
    inputs: dict[str, str]
    steps: dict[str, StepState] = Field(default_factory=dict)
    output_step: str | None = None
    output_cid: str | None = None
    error: str | None = None
    owner: str | None = None
    fresh: bool = Field(default=False, description="every step rendered again, no cached result reused")
    created_at: float = Field(default_factory=now)
    updated_at: float = Field(default_factory=now)
    started_at: float | None = Field(default=None, description="when its first step was dispatched or found cached")
    finished_at: float | None = Field(default=None, description="when it completed, failed or was cancelled")
    traceparent: str | None = Field(
        default=None, description="W3C traceparent of the request that submitted the run: its steps join that trace"
    )

    @property
    def progress(self) -> float:
        if not self.steps:
            return 1.0 if self.status == RunStatus.COMPLETED else 0.0
        return sum(1 for s in self.steps.values() if s.status.done) / len(self.steps)

    def step_counts(self) -> StepCounts:
        """How many steps there are and how far they got (sources count as done)."""
        statuses = [s.status for s in self.steps.values()]
        return StepCounts(
            total=len(statuses),
            done=sum(1 for s in statuses if s.done),
            cached=statuses.count(StepStatus.CACHED),
            failed=statuses.count(StepStatus.FAILED),
        )


class RunFinished(Message):
    """`artdag.event.finished.<run>`: a run's final state, complete, published once it is settled.

    Self-contained: whoever records what a run used and made (the cache) needs nothing else,
    the plan being content at `state.plan_cid`.
    """

    run_id: str
    state: RunState


class StepCounts(BaseModel):
    """A run's steps by outcome (the `runs` table keeps these beside its status)."""

    total: int = 0
    done: int = 0
    cached: int = 0
    failed: int = 0


# -- requests (planner service) --------------------------------------------------------


class SubmitRunRequest(Message):
    recipe: str
    inputs: dict[str, str] = Field(default_factory=dict)
    owner: str | None = Field(default=None, description="the user the run belongs to")
    fresh: bool = Field(default=False, description="render every step again: reuse no cached result")
    run_id: str | None = Field(
        default=None, description="the run's id, fixed by the caller: a submit sent again makes no second run"
    )
    viewer: Viewer | None = Field(
        default=None, description="inputs must be content this viewer may see (None: the system's own run)"
    )


class SubmitRunReply(Message):
    run_id: str
    status: RunStatus
    plan_id: str | None = None


class RunRequest(Message):
    run_id: str


class ListRunsRequest(Message):
    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)
    viewer: Viewer | None = None


class RunSummary(Message):
    run_id: str
    status: RunStatus
    recipe_name: str
    output_cid: str | None = None
    owner: str | None = None
    created_at: float
    updated_at: float
    started_at: float | None = None
    finished_at: float | None = None
    steps: StepCounts = Field(default_factory=StepCounts)


class RunList(Message):
    runs: list[RunSummary]
    total: int


class RunRecipeRequest(Message):
    recipe_id: str
    inputs: dict[str, str] = Field(default_factory=dict)
    owner: str | None = None
    run_id: str | None = Field(
        default=None, description="the run's id, fixed by the caller: a submit sent again makes no second run"
    )
    viewer: Viewer | None = Field(
        default=None, description="inputs must be content this viewer may see (None: the system's own run)"
    )


# -- dry runs and plans (planner service) ----------------------------------------------


class PlanRequest(Message):
    """`POST /api/plan`: a recipe (text or stored id) and its inputs."""

    recipe: str | None = None
    recipe_id: str | None = None
    inputs: dict[str, str] = Field(default_factory=dict)
    owner: str | None = None
    viewer: Viewer | None = Field(
        default=None, description="inputs must be content this viewer may see (None: the system's own run)"
    )


class PlannedStep(BaseModel):
    step_id: str
    name: str
    node_type: str
    level: int
    status: Literal["cached", "to-run", "input"]
    frames: int | None = Field(default=None, description="frames the step encodes (0 where it copies packets)")
    handoff: str = Field(default="deliver", description="deliver, part (copied later) or lossless (decoded later)")
    covers: list[str] = Field(default_factory=list, description="a fused step: the recipe nodes it renders")


class PlanReply(Message):
    """A dry run: the plan, each step cached or to run, and the frames still to render."""

    plan: Plan
    steps: list[PlannedStep]
    to_run: int
    cached: int
    cost_frames: int = Field(description="frames still to encode (steps not cached)")
    frames_encoded: int = Field(default=0, description="frames the whole plan encodes, cached steps included")
    output_frames: int = Field(default=0, description="frames in the run's output")
    encodes_per_output_frame: float | None = Field(
        default=None, description="frames_encoded / output_frames: 1.0 means every output frame is encoded once"
    )


class ExecuteRequest(Message):
    plan_id: str
    owner: str | None = Field(default=None, description="who runs it; a plan made by another user is not found")
    run_id: str | None = Field(
        default=None, description="the run's id, fixed by the caller: a submit sent again makes no second run"
    )


class RunAnalysis(Message):
    """`GET /api/run/{id}/analysis`: the analyses a run used, by ANALYZE step name."""

    run_id: str
    analyses: dict[str, dict[str, Any]]


DerivedKind = Literal["mp4", "thumbnail"]
MAX_DERIVE_WAIT_S = 120.0


class DeriveRequest(Message):
    """Ask for media derived from a video (a browser MP4, a thumbnail): made once per cid."""

    cid: str = Field(max_length=128)
    kind: DerivedKind
    make: bool = Field(default=False, description="start making it when nobody has (signed-in requests)")
    wait_s: float = Field(default=0.0, ge=0.0, le=MAX_DERIVE_WAIT_S, description="how long to wait for it")


class DerivedReply(Message):
    """Where a derived file stands: not started (`status` None), being made, made (`output_cid`), failed."""

    run_id: str
    status: RunStatus | None = None
    output_cid: str | None = None
    error: str | None = None
