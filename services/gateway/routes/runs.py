"""Runs: submit, list, show, cancel; and the 3-phase API (plan a recipe, execute the plan, or both)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, Field

from artdag_common.contracts import Planner
from artdag_common.errors import PayloadTooLargeError
from artdag_common.ids import check_run_id
from artdag_common.schemas import (
    ExecuteRequest,
    ListRunsRequest,
    Plan,
    PlanReply,
    PlanRequest,
    Principal,
    RecipeUpload,
    RunAnalysis,
    RunList,
    RunRequest,
    RunState,
    SubmitRunReply,
    SubmitRunRequest,
)
from services.gateway import errors
from services.gateway.auth import CurrentUser
from services.gateway.deps import Gateway, GatewayDep, Offset
from services.gateway.policy import owned_run, recipe_ref, visible_recipe
from services.gateway.submitting import IdempotencyKey, run_id_for, run_stored, start_run

router = APIRouter()


class PlanBody(BaseModel):
    recipe: str | None = Field(
        default=None,
        description="the recipe's text, YAML or S-expression (or give recipe_id)",
        max_length=4 * 1024 * 1024,
    )
    recipe_id: str | None = Field(default=None, description="a stored recipe's id")
    inputs: dict[str, str] = Field(default_factory=dict, description="recipe input name → content cid")


class ExecuteBody(BaseModel):
    plan_id: str = Field(description="the plan_id a dry run (POST /api/plan) answered", max_length=64)


class RunBody(BaseModel):
    recipe: str = Field(description="the recipe's text, YAML or S-expression", max_length=4 * 1024 * 1024)
    inputs: dict[str, str] = Field(default_factory=dict, description="recipe input name → content cid")
    fresh: bool = Field(default=False, description="render every step again, reusing no cached result (verify)")


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
    request = SubmitRunRequest(
        recipe=body.recipe,
        inputs=body.inputs,
        owner=user.user,
        fresh=body.fresh,
        run_id=run_id,
        viewer=user.viewer(),
    )
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


# -- 3-phase: plan, then execute (or both in one call) ----------------------------------


def _check_recipe_size(text: str | None, gw: Gateway) -> None:
    if text is not None and len(text.encode()) > gw.settings.max_recipe_bytes:
        raise PayloadTooLargeError(f"recipe is larger than {gw.settings.max_recipe_bytes} bytes", field="recipe")


@router.post(
    "/api/plan",
    tags=["3-phase"],
    summary="Plan a recipe without running it (dry run)",
    responses=errors.responses(400, 404, 413),
)
async def plan_recipe(body: PlanBody, gw: GatewayDep, user: CurrentUser) -> PlanReply:
    _check_recipe_size(body.recipe, gw)
    recipe_id = recipe_ref(body.recipe_id)
    if body.recipe is None and recipe_id is not None:
        # A name means the newest version this user may see: the planner is given that version's CID.
        recipe_id = (await visible_recipe(gw, user, recipe_id)).recipe_id
    planning = PlanRequest(
        recipe=body.recipe, recipe_id=recipe_id, inputs=body.inputs, owner=user.user, viewer=user.viewer()
    )
    reply: PlanReply = await gw.call(Planner.dry_run, planning)
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
        return await run_stored(body.recipe_id, body.inputs, gw, user, idempotency_key)
    return await submit_run(RunBody(recipe=body.recipe or "", inputs=body.inputs), gw, user, idempotency_key)


# -- what a run used ------------------------------------------------------------------


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
