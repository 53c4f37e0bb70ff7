"""REST routes: runs, recipes, the 3-phase API, analysis, health. Each validates, asks a service, answers."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from artdag_common import __version__, rpc, subjects
from artdag_common.cid import validate_cid
from artdag_common.errors import ArtdagError, InvalidCidError, InvalidInputError, PayloadTooLargeError
from artdag_common.ids import check_run_id
from artdag_common.schemas import (
    AnalysisReply,
    AnalyzeRequest,
    CidRequest,
    ContentRecord,
    ExecuteRequest,
    HealthReply,
    HealthRequest,
    ListRunsRequest,
    Plan,
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
    SubmitRunReply,
    SubmitRunRequest,
)
from services.gateway.deps import Gateway, GatewayDep
from services.gateway.uploads import read_text_form

router = APIRouter()

# An hour of audio analyzes in well under a minute; this is the ceiling for a request.
ANALYZE_TIMEOUT_S = 600.0


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


@router.post("/runs", status_code=202, tags=["runs"], summary="Start a rendering run")
async def submit_run(body: Annotated[RunBody, Body()], gw: GatewayDep) -> SubmitRunReply:
    if len(body.recipe.encode()) > gw.settings.max_recipe_bytes:
        raise PayloadTooLargeError(f"recipe is larger than {gw.settings.max_recipe_bytes} bytes", field="recipe")
    reply: SubmitRunReply = await gw.call(
        "planner", "submit", SubmitRunRequest(recipe=body.recipe, inputs=body.inputs), SubmitRunReply
    )
    return reply


@router.get("/runs", tags=["runs"], summary="List runs, newest first")
async def list_runs(
    gw: GatewayDep, limit: Annotated[int, Query(ge=1, le=500)] = 50, offset: Annotated[int, Query(ge=0)] = 0
) -> RunList:
    runs: RunList = await gw.call("planner", "list_runs", ListRunsRequest(limit=limit, offset=offset), RunList)
    return runs


async def _run(run_id: str, gw: Gateway) -> dict[str, Any]:
    state: RunState = await gw.call("planner", "get_run", RunRequest(run_id=check_run_id(run_id)), RunState)
    body = state.model_dump(mode="json")
    body["progress"] = state.progress
    return body


@router.get("/runs/{run_id}", tags=["runs"], summary="Run status, steps and output")
async def get_run(run_id: str, gw: GatewayDep) -> dict[str, Any]:
    return await _run(run_id, gw)


@router.get("/api/run/{run_id}", tags=["runs"], summary="Run as JSON (original L1 path)")
async def get_run_api(run_id: str, gw: GatewayDep) -> dict[str, Any]:
    return await _run(run_id, gw)


@router.delete("/runs/{run_id}", tags=["runs"], summary="Cancel a run (if running) and delete its record")
async def delete_run(run_id: str, gw: GatewayDep) -> dict[str, Any]:
    state: RunState = await gw.call("planner", "cancel", RunRequest(run_id=check_run_id(run_id)), RunState)
    return {"run_id": state.run_id, "deleted": True, "status": state.status}


@router.post("/api/plan", tags=["3-phase"], summary="Plan a recipe without running it (dry run)")
async def plan_recipe(body: PlanBody, gw: GatewayDep) -> PlanReply:
    _check_recipe_size(body.recipe, gw)
    reply: PlanReply = await gw.call(
        "planner",
        "dry_run",
        PlanRequest(recipe=body.recipe, recipe_id=_recipe_id(body.recipe_id), inputs=body.inputs),
        PlanReply,
    )
    return reply


@router.post("/api/execute", status_code=202, tags=["3-phase"], summary="Run a plan made by POST /api/plan")
async def execute_plan(body: ExecuteBody, gw: GatewayDep) -> SubmitRunReply:
    reply: SubmitRunReply = await gw.call("planner", "execute", ExecuteRequest(plan_id=body.plan_id), SubmitRunReply)
    return reply


@router.post("/api/run-recipe", status_code=202, tags=["3-phase"], summary="Analyze, plan and execute in one call")
async def run_recipe(body: PlanBody, gw: GatewayDep) -> SubmitRunReply:
    if body.recipe_id is not None:
        return await _run_stored(body.recipe_id, body.inputs, gw)
    return await submit_run(RunBody(recipe=body.recipe or "", inputs=body.inputs), gw)


@router.get("/api/run/{run_id}/analysis", tags=["runs"], summary="The analyses the run used (tempo, beats, …)")
async def get_run_analysis(run_id: str, gw: GatewayDep) -> RunAnalysis:
    reply: RunAnalysis = await gw.call("planner", "get_analysis", RunRequest(run_id=check_run_id(run_id)), RunAnalysis)
    return reply


@router.get("/api/run/{run_id}/plan", tags=["runs"], summary="The run's execution plan: steps and cache ids")
async def get_plan(run_id: str, gw: GatewayDep) -> Plan:
    plan: Plan = await gw.call("planner", "get_plan", RunRequest(run_id=check_run_id(run_id)), Plan)
    return plan


# -- recipes ------------------------------------------------------------------------


def _recipe_id(recipe_id: str | None) -> str | None:
    if recipe_id is None:
        return None
    try:
        return validate_cid(recipe_id)
    except InvalidCidError:
        raise InvalidCidError("not a recipe id (recipe ids are CIDs)", field="recipe_id") from None


def _check_recipe_size(text: str | None, gw: Gateway) -> None:
    if text is not None and len(text.encode()) > gw.settings.max_recipe_bytes:
        raise PayloadTooLargeError(f"recipe is larger than {gw.settings.max_recipe_bytes} bytes", field="recipe")


@router.post("/recipes/upload", status_code=201, tags=["recipes"], summary="Upload a recipe (YAML file or body)")
async def upload_recipe(request: Request, gw: GatewayDep) -> RecipeRecord:
    limit = gw.settings.max_recipe_bytes
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await read_text_form(request.stream(), content_type, limit)
        text = form.get("file") or form.get("recipe")
        if text is None:
            raise InvalidInputError("the form has no 'file' part", field="file")
    else:
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > limit:
                raise PayloadTooLargeError(f"recipe is larger than {limit} bytes", field="recipe")
        text = body.decode("utf-8", "replace")
    record: RecipeRecord = await gw.call("planner", "recipe_upload", RecipeUpload(text=text), RecipeRecord)
    return record


@router.get("/recipes", tags=["recipes"], summary="List recipes, newest first")
async def list_recipes(
    gw: GatewayDep, limit: Annotated[int, Query(ge=1, le=500)] = 50, offset: Annotated[int, Query(ge=0)] = 0
) -> RecipeList:
    recipes: RecipeList = await gw.call(
        "planner", "recipe_list", ListRunsRequest(limit=limit, offset=offset), RecipeList
    )
    return recipes


@router.get("/recipes/{recipe_id}", tags=["recipes"], summary="A recipe: its source, inputs and id")
async def get_recipe(recipe_id: str, gw: GatewayDep) -> RecipeRecord:
    record: RecipeRecord = await gw.call(
        "planner", "recipe_get", RecipeRequest(recipe_id=_recipe_id(recipe_id) or ""), RecipeRecord
    )
    return record


@router.delete("/recipes/{recipe_id}", tags=["recipes"], summary="Delete a recipe")
async def delete_recipe(recipe_id: str, gw: GatewayDep) -> dict[str, Any]:
    await gw.call("planner", "recipe_delete", RecipeRequest(recipe_id=_recipe_id(recipe_id) or ""), RecipeRecord)
    return {"recipe_id": recipe_id, "deleted": True}


class InputsBody(BaseModel):
    inputs: dict[str, str] = Field(default_factory=dict, description="recipe input name → content cid")


@router.post("/recipes/{recipe_id}/run", status_code=202, tags=["recipes"], summary="Run a stored recipe")
async def run_stored_recipe(recipe_id: str, body: InputsBody, gw: GatewayDep) -> SubmitRunReply:
    return await _run_stored(recipe_id, body.inputs, gw)


async def _run_stored(recipe_id: str, inputs: dict[str, str], gw: Gateway) -> SubmitRunReply:
    request = RunRecipeRequest(recipe_id=_recipe_id(recipe_id) or "", inputs=inputs)
    reply: SubmitRunReply = await gw.call("planner", "recipe_run", request, SubmitRunReply)
    return reply


# -- analysis -----------------------------------------------------------------------


class AnalyzeBody(BaseModel):
    cid: str = Field(description="the content to analyze")
    features: list[str] = Field(min_length=1, max_length=16, description="e.g. beats, energy, spectrum, onsets")
    params: dict[str, Any] = Field(default_factory=dict, description="analyzer parameters (window_ms, bands, …)")


@router.post("/api/analyze", tags=["analysis"], summary="Analyze content: tempo, beats, energy, scenes, motion…")
async def analyze(body: AnalyzeBody, gw: GatewayDep) -> AnalysisReply:
    request = AnalyzeRequest(cid=validate_cid(body.cid), features=body.features, params=body.params)
    await gw.call("cache", "stat", CidRequest(cid=request.cid), ContentRecord)  # 404 for unknown content
    reply: AnalysisReply = await rpc.call(
        gw.runtime.nc, "analyzer", "analyze", request, AnalysisReply, timeout_s=ANALYZE_TIMEOUT_S
    )
    return reply


# -- system ---------------------------------------------------------------------------


@router.get("/health", tags=["system"], summary="Each service's health, answered over NATS, and the bus")
async def health(gw: GatewayDep) -> JSONResponse:
    nc = gw.runtime.nc
    server = nc.connected_url.netloc if nc.connected_url else None
    bus: dict[str, Any] = {"connected": nc.is_connected, "server": server}
    try:
        info = await gw.runtime.js.account_info()
        bus["jetstream"] = {"streams": info.streams, "consumers": info.consumers}
        bus["ok"] = nc.is_connected
    except Exception as exc:  # noqa: BLE001 - reported, not raised: this is the health check
        bus["ok"] = False
        bus["error"] = str(exc)

    async def ask(service: str) -> dict[str, Any]:
        try:
            reply: HealthReply = await rpc.call(
                nc, service, "health", HealthRequest(), HealthReply, timeout_s=gw.settings.health_timeout_s
            )
            return reply.model_dump(mode="json")
        except ArtdagError as exc:
            return {"service": service, "ok": False, "error": exc.message}

    replies = await asyncio.gather(*(ask(s) for s in subjects.SERVICES))
    services = {r["service"]: r for r in replies}
    ok = bool(bus["ok"]) and all(r.get("ok") for r in replies)
    return JSONResponse(
        {"ok": ok, "version": __version__, "bus": bus, "services": services}, status_code=200 if ok else 503
    )


@router.get("/", tags=["system"], summary="Server info and links")
async def home(gw: GatewayDep) -> dict[str, Any]:
    return {
        "name": "artdag",
        "version": __version__,
        "docs": "/docs",
        "links": {"runs": "/runs", "health": "/health", "upload": "/cache/upload"},
    }
