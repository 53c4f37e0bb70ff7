"""REST routes for effects users write: upload (checked first, errors at line and column), list, show
(the work is in `services.gateway.effects`, which the web UI's effect pages use too)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from artdag_common.schemas import ASSET_NAME_PATTERN
from services.gateway import errors
from services.gateway.auth import CurrentUser
from services.gateway.deps import GatewayDep, Offset
from services.gateway.effects import (
    MAX_SOURCE_BYTES,
    REF_PATTERN,
    EffectInfo,
    EffectList,
    effects_of,
    find_effect,
    store_effect,
)

router = APIRouter()


class EffectBody(BaseModel):
    """`POST /effects`: an effect's source, `(define-effect name …)`, and the name to give it."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(min_length=1, max_length=MAX_SOURCE_BYTES, description="the effect's text")
    name: str | None = Field(
        default=None,
        pattern=ASSET_NAME_PATTERN,
        description="what recipes may call it (`effect: NAME`); default: the name the source declares",
    )


@router.post(
    "/effects",
    status_code=201,
    tags=["effects"],
    summary="Store an effect (checked first: errors say line and column) and name it; recipes name it "
    "by its CID or that name",
    responses=errors.responses(400, 403, 413, 422, 507),
)
async def add_effect(body: EffectBody, gw: GatewayDep, user: CurrentUser) -> EffectInfo:
    return await store_effect(gw, user, body.source, body.name)


@router.get("/effects", tags=["effects"], summary="Your effects, newest first", responses=errors.responses())
async def list_effects(
    gw: GatewayDep,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
) -> EffectList:
    return await effects_of(gw, user, limit, offset)


@router.get(
    "/effects/{ref}",
    tags=["effects"],
    summary="An effect (by CID, or a name of yours or a shared one): its source, parameters and names",
    responses=errors.responses(404, 422),
)
async def get_effect(
    ref: Annotated[str, Path(pattern=REF_PATTERN, description="the effect's CID, or a name it goes by")],
    gw: GatewayDep,
    user: CurrentUser,
) -> EffectInfo:
    return await find_effect(gw, user, ref)
