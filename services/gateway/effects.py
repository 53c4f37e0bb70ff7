"""Effects users write, for the REST routes and the web UI: check and store one (errors at line and
column), find one by CID or name, list a user's with the names they go by.

An effect's source is content like any other, stored by its CID; a recipe names it by that CID
(`EFFECT {effect: Qm…}`) or by a name (`effect: my-glow`). Storing an effect names it for its
uploader (its declared name, or the one given; the newest upload under a name wins): the name is an
asset name (`GET /assets`, `DELETE /assets/{name}`), which the planner turns into the CID before it
plans, so a step's id follows the effect's exact text either way.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from artdag_common.cid import validate_cid
from artdag_common.contracts import Cache
from artdag_common.errors import InvalidCidError, InvalidInputError, NotFoundError, PayloadTooLargeError
from artdag_common.media_types import EFFECT_MEDIA_TYPE
from artdag_common.schemas import (
    ASSET_NAME_PATTERN,
    AssetInput,
    AssetList,
    AssetListRequest,
    AssetRecord,
    AssetResolved,
    AssetResolveRequest,
    CidRequest,
    ContentList,
    ContentOrigin,
    ContentRecord,
    MediaListRequest,
    Principal,
)
from services.gateway.deps import Gateway

if TYPE_CHECKING:
    from artdag_effects.lang import UserEffect
    from artdag_effects.sandbox import PythonEffect
    from services.gateway.settings import GatewaySettings

    Effect = UserEffect | PythonEffect

# An effect's source, at most (artdag_effects.user.MAX_SOURCE_BYTES; a test keeps them equal).
MAX_SOURCE_BYTES = 64 * 1024


def _check(source: str, settings: GatewaySettings) -> Effect:
    """An uploaded source, checked (nothing of it runs): the effect language compiled, a Python effect's
    header read, refused where Python effects are off (ARTDAG_PYTHON_EFFECTS) or a dependency is not
    approved."""
    # The effects library loads on first use: a gateway that sees no effect starts without numpy.
    from artdag_effects.sandbox import PythonEffectPolicy
    from artdag_effects.user import check_source

    return check_source(source, python=PythonEffectPolicy.of(settings))


def _describe(source: str) -> Effect:
    """A stored effect's name, description and parameters (a Python effect's even where they are off now)."""
    from artdag_effects.user import is_python_source

    if is_python_source(source):
        from artdag_effects.sandbox import parse_python_effect

        return parse_python_effect(source)
    from artdag_effects.lang import check_effect

    return check_effect(source)


CID_PATTERN = r"^(Qm[1-9A-HJ-NP-Za-km-z]{44}|b[a-z2-7]{20,100})$"
# `GET /effects/{ref}`: an effect's CID, or a name recipes call it by.
REF_PATTERN = r"^(Qm[1-9A-HJ-NP-Za-km-z]{44}|b[a-z2-7]{20,100}|[A-Za-z_][A-Za-z0-9_-]{0,63})$"


class EffectParam(BaseModel):
    name: str
    type: str
    default: Any
    min: float | None = None
    max: float | None = None
    description: str = ""
    choices: list[str] | None = Field(default=None, description="a Python effect's `choice` parameter: its values")


class EffectInfo(BaseModel):
    """A stored effect: its CID (what recipes name), its declared name and parameters, its source, and the
    names a recipe of yours may call it by."""

    cid: str
    name: str
    description: str
    params: list[EffectParam]
    names: list[str] = Field(default_factory=list, description="your names for it, and shared ones, by name")
    source: str | None = Field(default=None, description="the text (in GET /effects/{ref})")


class EffectList(BaseModel):
    effects: list[EffectInfo]
    total: int


def _info(cid: str, effect: Effect, names: list[str], *, with_source: bool) -> EffectInfo:
    params = [
        EffectParam(
            name=p.name,
            type=p.kind,
            default=p.default,
            min=p.low,
            max=p.high,
            description=p.description,
            choices=list(choices) if (choices := getattr(p, "choices", ())) else None,
        )
        for p in effect.params
    ]
    return EffectInfo(
        cid=cid,
        name=effect.name,
        description=effect.description,
        params=params,
        names=names,
        source=effect.source if with_source else None,
    )


async def _read_source(gw: Gateway, cid: str) -> str:
    return (await gw.store.get_bytes(cid, max_bytes=MAX_SOURCE_BYTES)).decode("utf-8", "replace")


async def names_for(gw: Gateway, user: Principal) -> dict[str, list[AssetRecord]]:
    """What each cid is called for `user`, by name: their own names, and the shared ones they have no
    name of their own for (theirs wins, as when a recipe's name is resolved)."""
    found: AssetList = await gw.call(Cache.asset_list, AssetListRequest(viewer=user.viewer()))
    meant: dict[str, AssetRecord] = {}
    for asset in sorted(found.assets, key=lambda a: not a.shared):  # shared first, the user's own overwrite them
        if asset.shared or asset.owner == user.user:
            meant[asset.name] = asset
    by_cid: dict[str, list[AssetRecord]] = {}
    for name in sorted(meant):
        by_cid.setdefault(meant[name].cid, []).append(meant[name])
    return by_cid


async def _names(gw: Gateway, user: Principal) -> dict[str, list[str]]:
    return {cid: [a.name for a in assets] for cid, assets in (await names_for(gw, user)).items()}


async def store_effect(gw: Gateway, user: Principal, source: str, name: str | None = None) -> EffectInfo:
    """Check an effect's source (errors at line and column), store it, and name it for `user` (its declared
    name unless `name` is given; the name now points here). Nothing is stored if it is refused."""
    if name is not None and not re.match(ASSET_NAME_PATTERN, name):
        raise InvalidInputError("a name is letters, digits, '_' and '-' (at most 64, not a digit first)", field="name")
    if len(source.encode("utf-8")) > MAX_SOURCE_BYTES:
        raise PayloadTooLargeError(f"an effect's source is at most {MAX_SOURCE_BYTES:,} bytes", field="source")
    gw.ensure_room("an effect")
    effect = await asyncio.to_thread(_check, source, gw.settings)
    called = name or effect.name
    from artdag_effects.registry import refuse_builtin_name

    await asyncio.to_thread(refuse_builtin_name, called)
    data = source.encode("utf-8")
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
    await gw.call(Cache.asset_add, AssetInput(name=called, cid=cid, viewer=user.viewer()))
    names = (await _names(gw, user)).get(cid, [called])
    return _info(cid, effect, names, with_source=True)


async def effect_cid(gw: Gateway, user: Principal, ref: str) -> str:
    """The CID `ref` stands for: a CID, or a name of the user's (else a shared one); 404 for a name nobody gave."""
    try:
        return validate_cid(ref)
    except InvalidCidError:
        pass
    found: AssetResolved = await gw.call(Cache.asset_resolve, AssetResolveRequest(names=[ref], owner=user.user))
    if ref not in found.cids:
        raise NotFoundError(f"no effect named {ref!r} of yours nor a shared one", field="ref")
    return found.cids[ref]


async def find_effect(gw: Gateway, user: Principal, ref: str) -> EffectInfo:
    """The stored effect `ref` (its CID or a name) stands for, with its source; 404 for what is no effect
    or what the user may not see."""
    cid = await effect_cid(gw, user, ref)
    record: ContentRecord = await gw.call(Cache.stat, CidRequest(cid=cid, viewer=user.viewer()))
    if record.media_type != EFFECT_MEDIA_TYPE:
        raise NotFoundError(f"{ref} is no effect (store one with POST /effects)", field="ref")
    effect = await asyncio.to_thread(_describe, await _read_source(gw, record.cid))
    names = (await _names(gw, user)).get(record.cid, [])
    return _info(record.cid, effect, names, with_source=True)


async def effects_of(gw: Gateway, user: Principal, limit: int, offset: int = 0) -> EffectList:
    """The effects the user holds, newest first, with the names they go by."""
    request = MediaListRequest(media_type=EFFECT_MEDIA_TYPE, limit=limit, offset=offset, viewer=user.viewer())
    found: ContentList = await gw.call(Cache.list, request)
    names = await _names(gw, user) if found.items else {}
    effects = []
    for record in found.items:
        effect = await asyncio.to_thread(_describe, await _read_source(gw, record.cid))
        effects.append(_info(record.cid, effect, names.get(record.cid, []), with_source=False))
    return EffectList(effects=effects, total=found.total)
