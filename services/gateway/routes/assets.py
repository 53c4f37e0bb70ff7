"""REST routes for named assets: a user's names for content, and the shared names an admin publishes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from artdag_common.contracts import Cache
from artdag_common.schemas import ASSET_NAME_PATTERN, AssetInput, AssetList, AssetListRequest, AssetRecord, AssetRequest
from services.gateway import errors
from services.gateway.auth import CurrentUser
from services.gateway.deps import GatewayDep

router = APIRouter()


class AssetBody(BaseModel):
    """`POST /assets`: a name for content you can see."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=ASSET_NAME_PATTERN, description="letters, digits, '_' and '-'")
    cid: str = Field(max_length=128)
    shared: bool = Field(default=False, description="admins: a name for everyone")


@router.get("/assets", tags=["assets"], summary="Your asset names and the shared ones", responses=errors.responses())
async def list_assets(gw: GatewayDep, user: CurrentUser) -> AssetList:
    found: AssetList = await gw.call(Cache.asset_list, AssetListRequest(viewer=user.viewer()))
    return found


@router.post(
    "/assets",
    status_code=201,
    tags=["assets"],
    summary="Name content (a recipe's `SOURCE {asset: NAME}`, `artdag render --effect E NAME`)",
    responses=errors.responses(400, 403, 404, 422),
)
async def add_asset(body: AssetBody, gw: GatewayDep, user: CurrentUser) -> AssetRecord:
    request = AssetInput(name=body.name, cid=body.cid, shared=body.shared, viewer=user.viewer())
    added: AssetRecord = await gw.call(Cache.asset_add, request)
    return added


@router.delete(
    "/assets/{name}",
    tags=["assets"],
    summary="Forget an asset name (the content stays)",
    responses=errors.responses(403, 404, 422),
)
async def delete_asset(
    name: Annotated[str, Path(pattern=ASSET_NAME_PATTERN, description="the asset's name")],
    gw: GatewayDep,
    user: CurrentUser,
    shared: Annotated[bool, Query(description="the shared name (admins)")] = False,
) -> AssetRecord:
    request = AssetRequest(name=name, shared=shared, viewer=user.viewer())
    gone: AssetRecord = await gw.call(Cache.asset_delete, request)
    return gone
