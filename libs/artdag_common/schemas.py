"""Every message on the bus, one pydantic model each, with a schema version `v`.

Contracts grow by adding optional fields (unknown fields are ignored so that an
older replica can read a newer message); a breaking change is a new model on a new
subject.
"""

from __future__ import annotations

import re
import time
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Message(BaseModel):
    """Base of every payload: JSON on the wire, schema version `v`."""

    model_config = ConfigDict(extra="ignore")

    v: Literal[1] = 1


def now() -> float:
    """Wall-clock seconds, the timestamp every event carries."""
    return time.time()


# -- plans -------------------------------------------------------------------


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


# -- runs and steps ------------------------------------------------------------


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


class StepCounts(BaseModel):
    """A run's steps by outcome (the `runs` table keeps these beside its status)."""

    total: int = 0
    done: int = 0
    cached: int = 0
    failed: int = 0


# -- content --------------------------------------------------------------------


class ContentOrigin(StrEnum):
    UPLOAD = "upload"
    IMPORT = "import"
    STEP_OUTPUT = "step_output"
    ANALYSIS = "analysis"
    PLAN = "plan"
    PROVENANCE = "provenance"


class ContentRecord(Message):
    """Metadata of stored bytes (the cache service's `content` table)."""

    cid: str
    size: int = Field(ge=0)
    media_type: str
    name: str | None = None
    origin: ContentOrigin
    created_at: float = Field(default_factory=now)
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    owner: str | None = None
    pinned: bool = False
    published: bool = False
    last_access: float | None = None
    provenance_cid: str | None = Field(default=None, description="the cid of this output's provenance record")


class ContentStored(Message):
    """`artdag.event.content.stored`: new bytes are in the content store."""

    record: ContentRecord


# -- requests (core NATS, `artdag.rpc.<service>.<verb>`) ----------------------------


class Viewer(BaseModel):
    """Who asks, for the services that filter by owner: a user name (None: anonymous, who sees only what is
    published) and whether they hold the admin role.

    A request without a viewer is the system's own (another service): it sees everything.
    """

    user: str | None = Field(default=None, min_length=1, max_length=256, description="None: anonymous")
    admin: bool = False

    def may_see(self, owner: str | None) -> bool:
        """Whether something owned by `owner` belongs to this viewer (admins see all)."""
        return self.admin or (self.user is not None and owner == self.user)


class CidRequest(Message):
    cid: str
    viewer: Viewer | None = None


MAX_LIST_ITEMS = 1000
"""How many cids a recipe's list input may bind, and a batched look-up (`CidsRequest`) may carry."""


class CidsRequest(Message):
    """`cache.stat_many`, `analyzer.probe_many`: many cids in one request (a list input's items)."""

    cids: list[str] = Field(min_length=1, max_length=MAX_LIST_ITEMS)
    viewer: Viewer | None = None


class ContentFound(Message):
    """`cache.stat_many`: the records of the cids asked for that exist and the viewer may see, in their order."""

    records: list[ContentRecord]


class UsageRequest(Message):
    """`cache.usage`: what one user holds."""

    user: str = Field(min_length=1, max_length=256)


class UsageReply(Message):
    """The content a user holds (uploaded, imported, or made by their runs): how many items and bytes."""

    items: int
    bytes: int


class SubmitRunRequest(Message):
    recipe: str
    inputs: dict[str, str] = Field(default_factory=dict)
    owner: str | None = Field(default=None, description="the user the run belongs to")
    fresh: bool = Field(default=False, description="render every step again: reuse no cached result")
    run_id: str | None = Field(
        default=None, description="the run's id, fixed by the caller: a submit sent again makes no second run"
    )


class SubmitRunReply(Message):
    run_id: str
    status: RunStatus
    plan_id: str | None = None


class RunRequest(Message):
    run_id: str


MAX_OFFSET = 1_000_000
"""How far into a list a page may start: past it a request is refused (422), never a scan or an overflow."""


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


class HealthRequest(Message):
    pass


class HealthReply(Message):
    service: str
    instance: str
    version: str
    ok: bool = True
    uptime_s: float
    details: dict[str, Any] = Field(default_factory=dict)


class RpcErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class RpcReply(Message):
    """The envelope of every reply: `ok` with `data`, or an `error` with a typed code."""

    ok: bool
    data: dict[str, Any] | None = None
    error: RpcErrorBody | None = None


MAX_REGISTER_BATCH = 512
"""Records one `cache.register_many` request carries at most."""


class ContentRecords(Message):
    """`cache.register_many`: records to register, in order."""

    records: list[ContentRecord] = Field(min_length=1, max_length=MAX_REGISTER_BATCH)


class RegisterOutcome(Message):
    """One record's outcome in a `cache.register_many` reply: the stored record, or why not."""

    record: ContentRecord | None = None
    error: RpcErrorBody | None = None


class RegisterManyReply(Message):
    """The outcomes of a `cache.register_many`, in the order of its records."""

    outcomes: list[RegisterOutcome]


class MediaInfo(Message):
    """What a media file holds (analyzer `probe`): streams, size, rate, duration, frame count."""

    cid: str
    duration_s: float
    has_video: bool
    has_audio: bool
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    frame_count: int | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    sample_rate: int | None = None
    video_profile: str | None = Field(
        default=None, description="the video codec's profile (a lossless intermediate: 'High 4:4:4 Predictive')"
    )


class ProbeOutcome(Message):
    """One cid's outcome in an `analyzer.probe_many` reply: what it holds, or why it could not be told."""

    info: MediaInfo | None = None
    error: RpcErrorBody | None = None


class ProbeManyReply(Message):
    """The outcomes of an `analyzer.probe_many`, in the order of its cids."""

    outcomes: list[ProbeOutcome]


class AnalyzeRequest(Message):
    """`artdag.rpc.analyzer.analyze`: features of one input, with analyzer parameters."""

    cid: str
    features: list[str] = Field(min_length=1, max_length=16)
    params: dict[str, Any] = Field(default_factory=dict)


class AnalysisReply(Message):
    """An analysis result: its id, the cid of its JSON in the content store, and the result itself."""

    analysis_id: str
    result_cid: str
    cached: bool
    result: dict[str, Any]


class AnalysisProgress(Message):
    """`artdag.event.analysis.<analysis_id>`: how far a long analysis has got."""

    analysis_id: str
    cid: str
    fraction: float = Field(ge=0, le=1)
    at: float = Field(default_factory=now)


# -- recipes and plans ---------------------------------------------------------------


class RecipeInputInfo(BaseModel):
    name: str
    type: str
    description: str = ""
    list: bool = False
    asset: str | None = Field(default=None, description="the named asset bound when the run gives no cid")


class RecipeRecord(Message):
    """A stored recipe (`GET /recipes/{id}`)."""

    recipe_id: str
    name: str
    version: str
    description: str
    inputs: list[RecipeInputInfo]
    text: str
    example: bool = False
    owner: str | None = None
    created_at: float
    recipe_owner: str | None = Field(
        default=None, description="the `owner` the recipe text names (the original engine's key; not the uploader)"
    )
    registry: dict[str, dict[str, Any]] | None = Field(
        default=None, description="the recipe's `registry` of named assets and effects, as written"
    )


class RecipeUpload(Message):
    text: str
    owner: str | None = None


class RecipeRequest(Message):
    recipe_id: str
    viewer: Viewer | None = Field(default=None, description="another user's recipe is not found to this viewer")


class RecipeList(Message):
    recipes: list[RecipeRecord]
    total: int


class RunRecipeRequest(Message):
    recipe_id: str
    inputs: dict[str, str] = Field(default_factory=dict)
    owner: str | None = None
    run_id: str | None = Field(
        default=None, description="the run's id, fixed by the caller: a submit sent again makes no second run"
    )


class PlanRequest(Message):
    """`POST /api/plan`: a recipe (text or stored id) and its inputs."""

    recipe: str | None = None
    recipe_id: str | None = None
    inputs: dict[str, str] = Field(default_factory=dict)
    owner: str | None = None


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


# -- content metadata, deletion, media listing (cache service) ---------------------------

TAG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 _.:+-]{0,63}$"
MAX_TAGS = 32
MAX_DESCRIPTION = 4000


def _no_control(value: str, what: str, allow_newlines: bool = False) -> str:
    for ch in value:
        if ord(ch) < 32 or ord(ch) == 127:
            if allow_newlines and ch in "\n\t\r":
                continue
            raise ValueError(f"{what} may not contain control characters")
    return value


class ContentMetaPatch(BaseModel):
    """`PATCH /cache/{cid}/meta`: what to change; a field left out (or null) stays as it is.

    An empty name or description clears it; `tags: []` removes every tag.
    """

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=512)
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION)
    tags: list[str] | None = Field(default=None, max_length=MAX_TAGS)
    pinned: bool | None = None

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str | None) -> str | None:
        return None if value is None else _no_control(value.strip(), "a name")

    @field_validator("description")
    @classmethod
    def _check_description(cls, value: str | None) -> str | None:
        return None if value is None else _no_control(value.strip(), "a description", allow_newlines=True)

    @field_validator("tags")
    @classmethod
    def _check_tags(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        seen: list[str] = []
        for raw in value:
            tag = raw.strip()
            if not re.match(TAG_PATTERN, tag):
                raise ValueError(
                    f"tag {tag[:70]!r} must be 1-64 characters: letters, digits, space and _ . : + -"
                    " (starting with a letter or digit)"
                )
            if tag not in seen:
                seen.append(tag)
        return seen


class ContentMetaUpdate(Message):
    """`artdag.rpc.cache.update_meta`: apply a patch to one cid's metadata."""

    cid: str
    patch: ContentMetaPatch
    viewer: Viewer | None = None


class MediaListRequest(Message):
    """`artdag.rpc.cache.list`: content newest first, optionally of one media type (`video`, `image/png`)."""

    media_type: str | None = Field(default=None, pattern=r"^[a-z]+(/[a-z0-9.+-]+)?$", max_length=128)
    limit: int = Field(default=50, ge=1, le=200)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)
    viewer: Viewer | None = Field(default=None, description="only what this viewer holds, plus published content")


class ContentList(Message):
    items: list[ContentRecord]
    total: int
    limit: int
    offset: int


class ContentDeleted(Message):
    """What `DELETE /cache/{cid}` removed."""

    cid: str
    deleted: bool = True
    blob_deleted: bool


class ProvenanceInput(BaseModel):
    name: str
    cid: str


class ProvenanceEffect(BaseModel):
    name: str
    version: str


class ProvenanceSignature(BaseModel):
    """An Ed25519 signature over a provenance record's canonical JSON (the record without `signature`)."""

    alg: Literal["ed25519"] = "ed25519"
    key_id: str = Field(description="the signing key's fingerprint: sha256 of its raw public key, hex")
    public_key: str = Field(description="the raw 32-byte public key, base64")
    value: str = Field(description="the 64-byte signature, base64")


class ProvenanceStep(BaseModel):
    """One node of the recipe as the run rendered it (a fused node names the step that rendered it)."""

    name: str
    node_type: str
    step_id: str = Field(description="the plan step that rendered it (a CHAIN or CUTS for fused nodes)")


class InfrastructureRef(BaseModel):
    """What made an output, as the original records name it: `infra:<name>` and the CID of a JSON
    document describing it (stored beside the record)."""

    name: str
    cid: str


class ProvenanceRecord(Message):
    """How an output was made (stored as JSON content, linked from the output's `provenance_cid`)."""

    run_id: str
    rendered_at: str = Field(description="ISO 8601, UTC")
    rendered_by: str
    output: ProvenanceInput
    inputs: list[ProvenanceInput]
    effects: list[ProvenanceEffect]
    recipe_cid: str
    plan_id: str | None
    plan_cid: str | None = None
    infrastructure: dict[str, InfrastructureRef] = Field(
        description="`software` and `hardware`: {name: 'infra:…', cid} of the documents that describe them"
    )
    steps: list[ProvenanceStep] = Field(
        default_factory=list, description="every node of the recipe the output was made with, in plan order"
    )
    signature: ProvenanceSignature | None = Field(
        default=None, description="the L1's Ed25519 signature over the record without this field"
    )


# -- named assets (cache service) ---------------------------------------------------------

ASSET_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"


class AssetRecord(Message):
    """A name for content: a user's own, or shared with everyone by an admin (`owner` None)."""

    name: str
    cid: str
    shared: bool = False
    owner: str | None = None
    created_at: float
    updated_at: float


class AssetList(Message):
    assets: list[AssetRecord]


class AssetInput(Message):
    """`POST /assets`: name content you hold (a name you have already used points to the new cid)."""

    name: str = Field(pattern=ASSET_NAME_PATTERN, description="letters, digits, '_' and '-', like a recipe input")
    cid: str
    shared: bool = Field(default=False, description="an admin's name for everyone (a user's own name wins)")
    viewer: Viewer | None = Field(default=None, description="set by the gateway; ignored from clients")


class AssetRequest(Message):
    """`cache.asset_delete`: the viewer's own name, or (`shared`) a shared one."""

    name: str = Field(pattern=ASSET_NAME_PATTERN)
    shared: bool = False
    viewer: Viewer | None = None


class AssetListRequest(Message):
    viewer: Viewer | None = None


class AssetResolveRequest(Message):
    """`cache.asset_resolve`: the cids `owner`'s asset names stand for (their own first, then shared)."""

    names: list[str] = Field(max_length=MAX_LIST_ITEMS)
    owner: str | None = None


class AssetResolved(Message):
    cids: dict[str, str] = Field(description="name → cid, for the names that are known")


# -- storage providers (cache service) ----------------------------------------------------

StorageType = Literal["s3", "ipfs", "nats", "local", "pinning"]
ReplicateMode = Literal["none", "outputs", "inputs", "all"]
"""What a provider receives of its owner's content: nothing, run outputs (with their provenance
records), uploads and imports, or both."""
LocationState = Literal["pending", "stored", "failed", "removing"]


class StorageProviderInput(Message):
    """`POST /storage/add`: a named provider of one type with its configuration."""

    name: str = Field(min_length=1, max_length=128)
    type: StorageType
    config: dict[str, Any] = Field(default_factory=dict)
    replicate: ReplicateMode = Field(default="none", description="which of the owner's content is copied here")
    default: bool = Field(default=False, description="read back from first, and the target of a plain copy")
    owner: str | None = Field(default=None, description="set by the gateway to the caller; ignored from clients")
    viewer: Viewer | None = Field(
        default=None,
        description="who asks, set by the gateway (ignored from clients): decides whether the provider may reach"
        " private addresses or a local directory; None has a plain user's rights",
    )


class StorageProviderPatch(BaseModel):
    """`PATCH /storage/{id}`: a new name and/or config fields to change (masked secrets stay as they are)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=128)
    config: dict[str, Any] | None = None
    replicate: ReplicateMode | None = None
    default: bool | None = None


class StorageProviderUpdate(Message):
    id: str
    patch: StorageProviderPatch
    viewer: Viewer | None = Field(default=None, description="who asks: see StorageProviderInput.viewer")


class StorageProviderRequest(Message):
    id: str
    viewer: Viewer | None = Field(default=None, description="who asks: see StorageProviderInput.viewer")
    keep_copies: bool = Field(default=True, description="on delete: leave the copies in the provider")


class StorageProviderRecord(Message):
    """A provider as the API shows it: secrets masked."""

    id: str
    name: str
    type: StorageType
    config: dict[str, Any]
    replicate: ReplicateMode = "none"
    default: bool = False
    owner: str | None = None
    created_at: float
    updated_at: float


class StorageProviderList(Message):
    providers: list[StorageProviderRecord]


class ContentLocation(BaseModel):
    """One copy of content at a storage provider, and how it stands."""

    provider_id: str
    provider_name: str
    type: StorageType
    state: LocationState
    error: str | None = Field(default=None, description="why the last attempt failed (state failed or pending)")
    attempts: int = 0
    updated_at: float


class ContentLocations(Message):
    """`cache.locations`: where content is kept besides the local store."""

    cid: str
    local: bool = Field(description="whether the local content store holds the bytes now")
    locations: list[ContentLocation]


class ContentMeta(ContentRecord):
    """`GET /cache/{cid}/meta`: the record, and where its bytes are kept."""

    local: bool = True
    locations: list[ContentLocation] = Field(default_factory=list)


class CopyRequest(Message):
    """`cache.copy` (`POST /cache/{cid}/locations`): copy content the viewer holds to one of their providers."""

    cid: str
    provider_id: str | None = Field(default=None, description="the viewer's default provider when omitted")
    viewer: Viewer | None = None


class ReplicationTask(Message):
    """`artdag.task.replicate`: copy (`store`) or remove one cid at one provider; the work queue keeps it."""

    cid: str
    provider_id: str
    action: Literal["store", "remove"] = "store"
    ref: str | None = Field(default=None, description="the provider's own name for the copy (a pin request id)")


class StorageTestReply(Message):
    """`POST /storage/{id}/test`: did a small object round-trip through the provider?"""

    id: str
    ok: bool
    error: str | None = None
    elapsed_s: float


class StorageTypeRequest(Message):
    type: str


class StorageField(BaseModel):
    name: str
    type: str
    required: bool
    secret: bool = False
    default: Any = None
    description: str = ""


class StorageTypeSchema(Message):
    """`GET /storage/type/{type}`: the fields a provider of this type takes."""

    type: StorageType
    fields: list[StorageField]


class StorageListRequest(Message):
    """`artdag.rpc.cache.storage_list`: every provider."""

    viewer: Viewer | None = Field(default=None, description="only this viewer's providers (admins: all)")


# -- auth (auth service) ---------------------------------------------------------------


class Principal(Message):
    """Who a valid token belongs to, as the auth service answers `verify`."""

    user: str = Field(min_length=1, max_length=256)
    roles: list[str] = Field(default_factory=list, description="e.g. admin")
    scopes: list[str] = Field(default_factory=list, description="e.g. l2: may call the L2-only routes")
    token_hash: str = Field(description="sha256 of the token, hex: how revocations name it")
    issued_at: float = Field(description="when this L1 first saw (local: issued) the token")
    expires_at: float | None = None
    source: Literal["local", "l2"] = "local"

    @property
    def admin(self) -> bool:
        """Whether the principal holds the `admin` role."""
        return "admin" in self.roles

    def viewer(self) -> Viewer:
        """The principal as the services' ownership filters take it."""
        return Viewer(user=self.user, admin=self.admin)


class VerifyTokenRequest(Message):
    """`artdag.rpc.auth.verify`: is this token valid, and whose is it? (The bus is private; never log this.)"""

    token: str = Field(min_length=1, max_length=4096)


class IssueTokenRequest(Message):
    """`artdag.rpc.auth.issue` (local mode): a new token for `user`."""

    user: str = Field(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9_.@-]+$")
    roles: list[str] = Field(default_factory=list)
    scopes: list[str] = Field(default_factory=list)
    ttl_s: float | None = Field(default=None, gt=0)


class IssuedToken(Message):
    """A new token, shown once; only its hash is kept."""

    token: str
    principal: Principal


class RevokeTokenRequest(Message):
    """`artdag.rpc.auth.revoke`: revoke one token, named by its hash."""

    token_hash: str = Field(pattern=r"^[0-9a-f]{64}$")


class RevokeUserRequest(Message):
    """`artdag.rpc.auth.revoke_user`: revoke every token of one user."""

    user: str = Field(min_length=1, max_length=256)


class RevokeReply(Message):
    revoked: int = Field(description="how many token hashes were added to the revocation list")


# -- L2 publication (cache service) ---------------------------------------------------------


class PublishRequest(Message):
    """`artdag.rpc.cache.publish`: announce content to L2 as an ActivityPub `Create`."""

    cid: str
    viewer: Viewer


class Publication(Message):
    """A recorded publication: what was sent to which inbox, and when."""

    cid: str
    user: str
    activity_id: str
    object_id: str
    inbox: str
    published_at: float
    activity: dict[str, Any]
    already: bool = Field(default=False, description="true when it had been published before (idempotent)")


class HoldRequest(Message):
    """`artdag.rpc.cache.hold`: let `user` see and change these cids (what their run made); idempotent."""

    cids: list[str] = Field(max_length=10_000)
    user: str = Field(min_length=1, max_length=256)


class HoldReply(Message):
    held: int = Field(description="how many holds were new")


class L1KeysRequest(Message):
    """`artdag.rpc.cache.keys`: the L1's public keys."""


class L1Keys(Message):
    """The L1's public keys: RSA (HTTP Signatures) as PEM, Ed25519 (provenance) raw base64."""

    rsa_public_pem: str
    ed25519_public: str
    ed25519_key_id: str
