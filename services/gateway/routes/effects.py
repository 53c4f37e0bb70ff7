"""REST routes for effects users write: upload (compiled first, errors at line and column), list, show.

An effect's source is content like any other, stored by its CID; a recipe names it by that CID
(`EFFECT {effect: Qm…}`), so a step's id follows the effect's exact text.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from artdag_common.contracts import Cache
from artdag_common.errors import NotFoundError
from artdag_common.media_types import EFFECT_MEDIA_TYPE
from artdag_common.schemas import CidRequest, ContentList, ContentOrigin, ContentRecord, MediaListRequest
from services.gateway import errors
from services.gateway.auth import CurrentUser
from services.gateway.deps import GatewayDep, Offset

if TYPE_CHECKING:
    from artdag_effects.lang import UserEffect

router = APIRouter()

# An effect's source, at most (artdag_effects.user.MAX_SOURCE_BYTES; a test keeps them equal).
MAX_SOURCE_BYTES = 64 * 1024


def _check(source: str) -> UserEffect:
    # The effects library loads on first use: a gateway that sees no effect starts without numpy.
    from artdag_effects.lang import check_effect

    return check_effect(source)


CID_PATTERN = r"^(Qm[1-9A-HJ-NP-Za-km-z]{44}|b[a-z2-7]{20,100})$"


class EffectBody(BaseModel):
    """`POST /effects`: an effect's source, `(define-effect name …)`."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(min_length=1, max_length=MAX_SOURCE_BYTES, description="the effect's text")


class EffectParam(BaseModel):
    name: str
    type: str
    default: Any
    min: float | None = None
    max: float | None = None
    description: str = ""


class EffectInfo(BaseModel):
    """A stored effect: its CID (what recipes name), its declared name and parameters, its source."""

    cid: str
    name: str
    description: str
    params: list[EffectParam]
    source: str | None = Field(default=None, description="the text (in GET /effects/{cid})")


class EffectList(BaseModel):
    effects: list[EffectInfo]
    total: int


def _info(cid: str, effect: UserEffect, *, with_source: bool) -> EffectInfo:
    params = [
        EffectParam(name=p.name, type=p.kind, default=p.default, min=p.low, max=p.high, description=p.description)
        for p in effect.params
    ]
    return EffectInfo(
        cid=cid,
        name=effect.name,
        description=effect.description,
        params=params,
        source=effect.source if with_source else None,
    )


async def _read_source(gw: GatewayDep, cid: str) -> str:
    return (await gw.store.get_bytes(cid, max_bytes=MAX_SOURCE_BYTES)).decode("utf-8", "replace")


@router.post(
    "/effects",
    status_code=201,
    tags=["effects"],
    summary="Store an effect (checked first: errors say line and column); recipes name it by its CID",
    responses=errors.responses(400, 413, 422, 507),
)
async def add_effect(body: EffectBody, gw: GatewayDep, user: CurrentUser) -> EffectInfo:
    gw.ensure_room("an effect")
    effect = await asyncio.to_thread(_check, body.source)
    data = body.source.encode("utf-8")
    cid = await gw.store.put_bytes(data)
    record = ContentRecord(
        cid=cid,
        size=len(data),
        media_type=EFFECT_MEDIA_TYPE,
        name=f"{effect.name}.effect",
        description=effect.description or None,
        origin=ContentOrigin.UPLOAD,
        owner=user.user,
    )
    await gw.call(Cache.register, record)
    return _info(cid, effect, with_source=True)


@router.get("/effects", tags=["effects"], summary="Your effects, newest first", responses=errors.responses())
async def list_effects(
    gw: GatewayDep,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
) -> EffectList:
    request = MediaListRequest(media_type=EFFECT_MEDIA_TYPE, limit=limit, offset=offset, viewer=user.viewer())
    found: ContentList = await gw.call(Cache.list, request)
    effects = []
    for record in found.items:
        effect = await asyncio.to_thread(_check, await _read_source(gw, record.cid))
        effects.append(_info(record.cid, effect, with_source=False))
    return EffectList(effects=effects, total=found.total)


@router.get(
    "/effects/{cid}",
    tags=["effects"],
    summary="An effect: its source, parameters and description",
    responses=errors.responses(404, 422),
)
async def get_effect(
    cid: Annotated[str, Path(pattern=CID_PATTERN, description="the effect's CID")], gw: GatewayDep, user: CurrentUser
) -> EffectInfo:
    record = await gw.call(Cache.stat, CidRequest(cid=cid, viewer=user.viewer()))
    if record.media_type != EFFECT_MEDIA_TYPE:
        raise NotFoundError(f"{cid} is no effect (store one with POST /effects)", field="cid")
    effect = await asyncio.to_thread(_check, await _read_source(gw, record.cid))
    return _info(record.cid, effect, with_source=True)
