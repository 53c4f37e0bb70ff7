"""REST routes: runs, recipes, the 3-phase API, analysis, health. Each validates, asks a service, answers."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from artdag_common import __version__, subjects
from artdag_common.cid import validate_cid
from artdag_common.contracts import Analyzer, Cache, Planner, Verb, health_of
from artdag_common.disk import lowest_free
from artdag_common.errors import (
    ArtdagError,
    BadRequestError,
    InvalidCidError,
    InvalidInputError,
    NoAnswerInTimeError,
    NotFoundError,
    PayloadTooLargeError,
    ServiceUnavailableError,
)
from artdag_common.ids import check_run_id, new_run_id, sha3_hex
from artdag_common.recipe import RecipeRef
from artdag_common.schemas import (
    MAX_LIST_ITEMS,
    AnalysisReply,
    AnalyzeRequest,
    CidRequest,
    CidsRequest,
    ContentFound,
    ExecuteRequest,
    HealthRequest,
    HoldRequest,
    L1Keys,
    L1KeysRequest,
    ListRunsRequest,
    Plan,
    PlanReply,
    PlanRequest,
    Principal,
    RecipeList,
    RecipeRecord,
    RecipeRequest,
    RecipeUpload,
    RunAnalysis,
    RunList,
    RunRecipeRequest,
    RunRequest,
    RunState,
    SubmitRunReply,
    SubmitRunRequest,
)
from services.gateway import errors, openapi
from services.gateway.auth import CurrentUser, OptionalUser
from services.gateway.deps import Gateway, GatewayDep, Offset
from services.gateway.uploads import read_body, read_text_form

router = APIRouter()
log = logging.getLogger(__name__)


# -- runs --------------------------------------------------------------------------


class PlanBody(BaseModel):
    recipe: str | None = Field(
        default=None, description="the recipe's YAML text (or give recipe_id)", max_length=4 * 1024 * 1024
    )
    recipe_id: str | None = Field(default=None, description="a stored recipe's id")
    inputs: dict[str, str] = Field(default_factory=dict, description="recipe input name → content cid")


class ExecuteBody(BaseModel):
    plan_id: str = Field(description="the plan_id a dry run (POST /api/plan) answered", max_length=64)


class RunBody(BaseModel):
    recipe: str = Field(description="the recipe's YAML text", max_length=4 * 1024 * 1024)
    inputs: dict[str, str] = Field(default_factory=dict, description="recipe input name → content cid")
    fresh: bool = Field(default=False, description="render every step again, reusing no cached result (verify)")


async def check_inputs(gw: Gateway, user: Principal, inputs: dict[str, str]) -> None:
    """Every input must be content the user may see: a run must not turn another user's upload into output.

    A list longer than `MAX_LIST_ITEMS` is refused before any item is looked up; the rest are
    looked up together (one request per `MAX_LIST_ITEMS` cids). Another user's content reads
    exactly like unknown content; malformed values are left to the planner, which names what is
    wrong with them.
    """
    wanted: dict[str, str] = {}  # cid -> the input that names it first
    for name, value in inputs.items():
        items = value.split(",")
        if len(items) > MAX_LIST_ITEMS:
            raise InvalidInputError(f"a list of 1 to {MAX_LIST_ITEMS} cids, comma-separated", field=f"inputs.{name}")
        for item in items:
            try:
                wanted.setdefault(validate_cid(item.strip()), name)
            except InvalidCidError:
                continue
    cids = list(wanted)
    seen: set[str] = set()
    for start in range(0, len(cids), MAX_LIST_ITEMS):
        request = CidsRequest(cids=cids[start : start + MAX_LIST_ITEMS], viewer=user.viewer())
        found: ContentFound = await gw.call(Cache.stat_many, request)
        seen.update(record.cid for record in found.records)
    for cid, name in wanted.items():
        if cid not in seen:
            raise InvalidInputError(f"no content with cid {cid} (upload it first)", field=f"inputs.{name}")


IDEMPOTENCY_KEY_RE = re.compile(r"^[A-Za-z0-9._:+/=-]{1,128}$")

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="any unique string (a UUID): the same submit sent again with it answers with the same "
        "run instead of starting another",
    ),
]


def run_id_for(user: Principal, key: str | None) -> str:
    """The run id a submit takes: fixed by the user's Idempotency-Key, else a new one."""
    if key is None:
        return new_run_id()
    if not IDEMPOTENCY_KEY_RE.match(key):
        raise BadRequestError("must be 1-128 letters, digits or ._:+/=-", field="Idempotency-Key")
    return "run-" + sha3_hex(["submit", user.user, key])[:32]


# What starts a run: a recipe and inputs, a stored recipe, a plan made by a dry run.
Starting = TypeVar("Starting", SubmitRunRequest, RunRecipeRequest, ExecuteRequest)


async def start_run(gw: Gateway, verb: Verb[Starting, SubmitRunReply], request: Starting) -> SubmitRunReply:
    """Ask the planner to start a run whose id is fixed here.

    A planner that does not answer in time either took the submit (the run exists: 202 with its
    id, it is being made) or never got to it (it drops requests whose caller gave up: 503, to
    send again; under the same Idempotency-Key that never makes a second run).
    """
    assert request.run_id is not None
    gw.ensure_room("a new run")
    try:
        reply = await gw.call(verb, request)
    except NoAnswerInTimeError as exc:
        log.warning("planner %s of %s answered late: %s", verb.name, request.run_id, exc)
        try:
            state: RunState = await gw.call(Planner.get_run, RunRequest(run_id=request.run_id))
        except (NotFoundError, NoAnswerInTimeError):
            raise ServiceUnavailableError(
                "the planner is too busy to take the run now; send it again "
                "(with an Idempotency-Key, sending again never makes a second run)"
            ) from exc
        return SubmitRunReply(run_id=request.run_id, status=state.status, plan_id=state.plan_id)
    return reply


@router.post(
    "/runs",
    status_code=202,
    tags=["runs"],
    summary="Start a rendering run",
    responses=errors.responses(400, 409, 413, 507),
)
async def submit_run(
    body: Annotated[RunBody, Body()], gw: GatewayDep, user: CurrentUser, idempotency_key: IdempotencyKey = None
) -> SubmitRunReply:
    if len(body.recipe.encode()) > gw.settings.max_recipe_bytes:
        raise PayloadTooLargeError(f"recipe is larger than {gw.settings.max_recipe_bytes} bytes", field="recipe")
    run_id = run_id_for(user, idempotency_key)
    await check_inputs(gw, user, body.inputs)
    request = SubmitRunRequest(recipe=body.recipe, inputs=body.inputs, owner=user.user, fresh=body.fresh, run_id=run_id)
    return await start_run(gw, Planner.submit, request)


@router.get("/runs", tags=["runs"], summary="List your runs (admins: all), newest first", responses=errors.responses())
async def list_runs(
    gw: GatewayDep,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> RunList:
    request = ListRunsRequest(limit=limit, offset=offset, viewer=user.viewer())
    runs: RunList = await gw.call(Planner.list_runs, request)
    return runs


async def owned_run(gw: Gateway, user: Principal, run_id: str) -> RunState:
    """The run if the user may see it; another user's run is "not found" (its existence is not disclosed)."""
    state: RunState = await gw.call(Planner.get_run, RunRequest(run_id=check_run_id(run_id)))
    if not user.viewer().may_see(state.owner):
        raise NotFoundError(f"no run {run_id}", field="run_id")
    return state


async def _run(run_id: str, gw: Gateway, user: Principal) -> dict[str, Any]:
    state = await owned_run(gw, user, run_id)
    body = state.model_dump(mode="json")
    body["progress"] = state.progress
    return body


@router.get("/runs/{run_id}", tags=["runs"], summary="Run status, steps and output", responses=errors.responses(404))
async def get_run(run_id: str, gw: GatewayDep, user: CurrentUser) -> dict[str, Any]:
    return await _run(run_id, gw, user)


@router.get(
    "/api/run/{run_id}", tags=["runs"], summary="Run as JSON (original L1 path)", responses=errors.responses(404)
)
async def get_run_api(run_id: str, gw: GatewayDep, user: CurrentUser) -> dict[str, Any]:
    return await _run(run_id, gw, user)


@router.get(
    "/runs/{run_id}/recipe",
    tags=["runs"],
    summary="The recipe text the run was submitted with",
    responses=errors.responses(404),
)
async def get_run_recipe(run_id: str, gw: GatewayDep, user: CurrentUser) -> RecipeUpload:
    await owned_run(gw, user, run_id)
    text: RecipeUpload = await gw.call(Planner.get_run_recipe, RunRequest(run_id=check_run_id(run_id)))
    return text.model_copy(update={"owner": None})


@router.delete(
    "/runs/{run_id}",
    tags=["runs"],
    summary="Cancel a run (if running) and delete its record",
    responses=errors.responses(404, 409),
)
async def delete_run(run_id: str, gw: GatewayDep, user: CurrentUser) -> dict[str, Any]:
    await owned_run(gw, user, run_id)
    state: RunState = await gw.call(Planner.cancel, RunRequest(run_id=check_run_id(run_id)))
    return {"run_id": state.run_id, "deleted": True, "status": state.status}


@router.post(
    "/api/plan",
    tags=["3-phase"],
    summary="Plan a recipe without running it (dry run)",
    responses=errors.responses(400, 404, 413),
)
async def plan_recipe(body: PlanBody, gw: GatewayDep, user: CurrentUser) -> PlanReply:
    _check_recipe_size(body.recipe, gw)
    recipe_id = _recipe_id(body.recipe_id)
    if body.recipe is None and recipe_id is not None:
        # A name means the newest version this user may see: the planner is given that version's CID.
        recipe_id = (await visible_recipe(gw, user, recipe_id)).recipe_id
    await check_inputs(gw, user, body.inputs)
    reply: PlanReply = await gw.call(
        Planner.dry_run, PlanRequest(recipe=body.recipe, recipe_id=recipe_id, inputs=body.inputs, owner=user.user)
    )
    return reply


@router.post(
    "/api/execute",
    status_code=202,
    tags=["3-phase"],
    summary="Run a plan made by POST /api/plan",
    responses=errors.responses(400, 404, 409, 507),
)
async def execute_plan(
    body: ExecuteBody, gw: GatewayDep, user: CurrentUser, idempotency_key: IdempotencyKey = None
) -> SubmitRunReply:
    request = ExecuteRequest(plan_id=body.plan_id, owner=user.user, run_id=run_id_for(user, idempotency_key))
    return await start_run(gw, Planner.execute, request)


@router.post(
    "/api/run-recipe",
    status_code=202,
    tags=["3-phase"],
    summary="Analyze, plan and execute in one call",
    responses=errors.responses(400, 404, 409, 413, 507),
)
async def run_recipe(
    body: PlanBody, gw: GatewayDep, user: CurrentUser, idempotency_key: IdempotencyKey = None
) -> SubmitRunReply:
    if body.recipe_id is not None:
        return await _run_stored(body.recipe_id, body.inputs, gw, user, idempotency_key)
    return await submit_run(RunBody(recipe=body.recipe or "", inputs=body.inputs), gw, user, idempotency_key)


@router.get(
    "/api/run/{run_id}/analysis",
    tags=["runs"],
    summary="The analyses the run used (tempo, beats, …)",
    responses=errors.responses(404),
)
async def get_run_analysis(run_id: str, gw: GatewayDep, user: CurrentUser) -> RunAnalysis:
    await owned_run(gw, user, run_id)
    reply: RunAnalysis = await gw.call(Planner.get_analysis, RunRequest(run_id=check_run_id(run_id)))
    return reply


@router.get(
    "/api/run/{run_id}/plan",
    tags=["runs"],
    summary="The run's execution plan: steps and cache ids",
    responses=errors.responses(404),
)
async def get_plan(run_id: str, gw: GatewayDep, user: CurrentUser) -> Plan:
    await owned_run(gw, user, run_id)
    plan: Plan = await gw.call(Planner.get_plan, RunRequest(run_id=check_run_id(run_id)))
    return plan


# -- recipes ------------------------------------------------------------------------


def _recipe_id(recipe_id: str | None) -> str | None:
    """A recipe reference as given (its CID, its name, or name@cid), checked for form: 400 naming the field."""
    if recipe_id is None:
        return None
    return str(RecipeRef.parse(recipe_id))


def _check_recipe_size(text: str | None, gw: Gateway) -> None:
    if text is not None and len(text.encode()) > gw.settings.max_recipe_bytes:
        raise PayloadTooLargeError(f"recipe is larger than {gw.settings.max_recipe_bytes} bytes", field="recipe")


async def visible_recipe(gw: Gateway, user: Principal, recipe_id: str) -> RecipeRecord:
    """The recipe if the user uploaded it, it is an example, or they are an admin; otherwise 404."""
    request = RecipeRequest(recipe_id=_recipe_id(recipe_id) or "", viewer=user.viewer())
    record: RecipeRecord = await gw.call(Planner.recipe_get, request)
    return record


@router.post(
    "/recipes/upload",
    status_code=201,
    tags=["recipes"],
    summary="Upload a recipe (YAML file or body)",
    responses=errors.responses(400, 409, 413),
    openapi_extra=openapi.multipart_body({"file": {"type": "string", "format": "binary"}}, ["file"], text=True),
)
async def upload_recipe(request: Request, gw: GatewayDep, user: CurrentUser) -> RecipeRecord:
    limit = gw.settings.max_recipe_bytes
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await read_text_form(request.stream(), content_type, limit)
        text = form.get("file") or form.get("recipe")
        if text is None:
            raise InvalidInputError("the form has no 'file' part", field="file")
    else:
        too_large = PayloadTooLargeError(f"recipe is larger than {limit} bytes", field="recipe")
        text = (await read_body(request.stream(), limit, too_large)).decode("utf-8", "replace")
    record: RecipeRecord = await gw.call(Planner.recipe_upload, RecipeUpload(text=text, owner=user.user))
    return record


@router.get(
    "/recipes",
    tags=["recipes"],
    summary="List your recipes and the examples, newest first",
    responses=errors.responses(),
)
async def list_recipes(
    gw: GatewayDep,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> RecipeList:
    request = ListRunsRequest(limit=limit, offset=offset, viewer=user.viewer())
    recipes: RecipeList = await gw.call(Planner.recipe_list, request)
    return recipes


@router.get(
    "/recipes/{recipe_id}",
    tags=["recipes"],
    summary="A recipe: its source, inputs and id",
    responses=errors.responses(400, 404),
)
async def get_recipe(recipe_id: str, gw: GatewayDep, user: CurrentUser) -> RecipeRecord:
    return await visible_recipe(gw, user, recipe_id)


@router.delete(
    "/recipes/{recipe_id}", tags=["recipes"], summary="Delete a recipe", responses=errors.responses(400, 404, 409)
)
async def delete_recipe(recipe_id: str, gw: GatewayDep, user: CurrentUser) -> dict[str, Any]:
    request = RecipeRequest(recipe_id=_recipe_id(recipe_id) or "", viewer=user.viewer())
    await gw.call(Planner.recipe_delete, request)
    return {"recipe_id": recipe_id, "deleted": True}


class InputsBody(BaseModel):
    inputs: dict[str, str] = Field(default_factory=dict, description="recipe input name → content cid")


@router.post(
    "/recipes/{recipe_id}/run",
    status_code=202,
    tags=["recipes"],
    summary="Run a stored recipe",
    responses=errors.responses(400, 404, 409, 507),
)
async def run_stored_recipe(
    recipe_id: str, body: InputsBody, gw: GatewayDep, user: CurrentUser, idempotency_key: IdempotencyKey = None
) -> SubmitRunReply:
    return await _run_stored(recipe_id, body.inputs, gw, user, idempotency_key)


async def _run_stored(
    recipe_id: str, inputs: dict[str, str], gw: Gateway, user: Principal, idempotency_key: str | None
) -> SubmitRunReply:
    run_id = run_id_for(user, idempotency_key)
    record = await visible_recipe(gw, user, recipe_id)
    await check_inputs(gw, user, inputs)
    request = RunRecipeRequest(recipe_id=record.recipe_id, inputs=inputs, owner=user.user, run_id=run_id)
    return await start_run(gw, Planner.recipe_run, request)


# -- analysis -----------------------------------------------------------------------


class AnalyzeBody(BaseModel):
    cid: str = Field(description="the content to analyze")
    features: list[str] = Field(min_length=1, max_length=16, description="e.g. beats, energy, spectrum, onsets")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="analyzer parameters: window_ms, bands, scene_threshold, tempo_min, tempo_max, tempo_hint"
        " (the BPM you would tap: picks the beats' metrical level)",
    )


@router.post(
    "/api/analyze",
    tags=["analysis"],
    summary="Analyze content: tempo, beats, energy, scenes, motion…",
    responses=errors.responses(400, 404),
)
async def analyze(body: AnalyzeBody, gw: GatewayDep, user: CurrentUser) -> AnalysisReply:
    request = AnalyzeRequest(cid=validate_cid(body.cid), features=body.features, params=body.params)
    # 404 for unknown content and for another user's
    await gw.call(Cache.stat, CidRequest(cid=request.cid, viewer=user.viewer()))
    reply: AnalysisReply = await gw.call(Analyzer.analyze, request)
    # The stored result (JSON by cid) is the asker's to fetch too.
    await gw.call(Cache.hold, HoldRequest(cids=[reply.result_cid], user=user.user))
    return reply


# -- system ---------------------------------------------------------------------------


class HealthReport(BaseModel):
    """`GET /health`: whether the stack is up; the details (bus, disk, each service) only for admins."""

    ok: bool = Field(description="every service answers and the bus is connected")
    degraded: list[str] = Field(default_factory=list, description="what works only in part (disk: short of room)")
    version: str | None = None
    bus: dict[str, Any] | None = None
    disk: dict[str, Any] | None = None
    services: dict[str, Any] | None = None


def _health_answer(report: dict[str, Any], user: Principal | None) -> JSONResponse:
    ok = bool(report["ok"])
    shown = report if user is not None and user.admin else {"ok": ok, "degraded": report.get("degraded", [])}
    return JSONResponse(
        HealthReport.model_validate(shown).model_dump(mode="json", exclude_unset=True),
        status_code=200 if ok else 503,
        # A service not answering yet (restarting, reconnecting) is worth asking again shortly.
        headers=None if ok else {"Retry-After": str(errors.RETRY_AFTER_S)},
    )


@router.get(
    "/health",
    tags=["system"],
    summary="Whether every service and the bus answer (details for admins)",
    responses={
        **errors.responses(),
        503: {
            "model": HealthReport | errors.ErrorBody,
            "description": "Something is down: try again after `Retry-After` seconds.",
            "headers": errors.RETRY_AFTER_HEADER,
        },
    },
)
async def health(gw: GatewayDep, user: OptionalUser) -> JSONResponse:
    path, free = lowest_free(gw.disk_paths())
    reserve = gw.settings.min_free_bytes
    disk = {"path": str(path), "free_bytes": free, "reserve_bytes": reserve, "ok": free >= reserve}
    # Short of disk the stack is degraded, not down: it still serves reads and deletions, which
    # is how room is made again, while uploads and new runs are refused (507).
    degraded = [] if disk["ok"] else ["disk"]
    nc = gw.runtime.nc
    server = nc.connected_url.netloc if nc.connected_url else None
    bus: dict[str, Any] = {"connected": nc.is_connected, "server": server}
    if not nc.is_connected:
        # No bus, no services to ask: say so at once rather than after every question times out.
        bus.update(ok=False, error="not connected to NATS (reconnecting)")
        report = {"ok": False, "degraded": degraded, "version": __version__, "bus": bus, "disk": disk, "services": {}}
        return _health_answer(report, user)
    try:
        info = await gw.runtime.js.account_info()
        bus["jetstream"] = {"streams": info.streams, "consumers": info.consumers}
        bus["ok"] = nc.is_connected
    except Exception as exc:  # noqa: BLE001 - reported, not raised: this is the health check
        bus["ok"] = False
        bus["error"] = f"JetStream did not answer ({type(exc).__name__})"

    async def ask(service: str) -> dict[str, Any]:
        try:
            reply = await gw.call(health_of(service), HealthRequest(), timeout_s=gw.settings.health_timeout_s)
            return reply.model_dump(mode="json")
        except ArtdagError as exc:
            return {"service": service, "ok": False, "error": exc.message}

    replies = await asyncio.gather(*(ask(s) for s in subjects.SERVICES))
    services = {r["service"]: r for r in replies}
    ok = bool(bus["ok"]) and all(r.get("ok") for r in replies)
    report = {"ok": ok, "degraded": degraded, "version": __version__, "bus": bus, "disk": disk, "services": services}
    return _health_answer(report, user)


@router.get(
    "/actor",
    tags=["system"],
    summary="This L1 as an ActivityPub actor: its public keys",
    responses={
        200: {"description": "The actor", "content": {"application/activity+json": {"schema": {"type": "object"}}}},
        **errors.responses(authenticated=False),
    },
)
async def actor(gw: GatewayDep) -> JSONResponse:
    keys: L1Keys = await gw.call(Cache.keys, L1KeysRequest())
    base = gw.settings.public_url or f"http://{gw.settings.host}:{gw.settings.port}"
    body = {
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
        "id": f"{base}/actor",
        "type": "Application",
        "preferredUsername": "artdag",
        "name": "artdag L1",
        # No inbox: an L1 takes no deliveries (it publishes to its L2, which holds the social side), and an
        # advertised inbox that answers 404 would have servers retry deliveries into nothing.
        "publicKey": {"id": f"{base}/actor#main-key", "owner": f"{base}/actor", "publicKeyPem": keys.rsa_public_pem},
        "artdag:provenanceKey": {
            "type": "Ed25519",
            "id": keys.ed25519_key_id,
            "publicKeyBase64": keys.ed25519_public,
        },
    }
    return JSONResponse(body, media_type="application/activity+json")


@router.get("/", tags=["system"], summary="Server info and links", responses=errors.responses(authenticated=False))
async def home(gw: GatewayDep) -> dict[str, Any]:
    return {
        "name": "artdag",
        "version": __version__,
        "docs": "/docs",
        "links": {"runs": "/runs", "health": "/health", "upload": "/cache/upload"},
    }
