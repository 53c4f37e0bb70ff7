"""Stored recipes: upload, list, show, delete, run."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from artdag_common.contracts import Planner
from artdag_common.errors import InvalidInputError, PayloadTooLargeError
from artdag_common.schemas import (
    ListRunsRequest,
    RecipeList,
    RecipeRecord,
    RecipeRequest,
    RecipeUpload,
    SubmitRunReply,
)
from services.gateway import errors, openapi
from services.gateway.auth import CurrentUser
from services.gateway.deps import GatewayDep, Offset
from services.gateway.policy import recipe_ref, visible_recipe
from services.gateway.submitting import IdempotencyKey, run_stored
from services.gateway.uploads import read_body, read_text_form

router = APIRouter()


@router.post(
    "/recipes/upload",
    status_code=201,
    tags=["recipes"],
    summary="Upload a recipe (YAML or S-expression; file or body)",
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
    request = RecipeRequest(recipe_id=recipe_ref(recipe_id) or "", viewer=user.viewer())
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
    return await run_stored(recipe_id, body.inputs, gw, user, idempotency_key)
