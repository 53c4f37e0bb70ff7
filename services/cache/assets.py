"""Named assets: a user's names for content (`cat` → its CID), and shared names an admin publishes.

A recipe or a quick render names an asset; the planner turns the name into its CID before
anything is planned, so step ids depend on the content, never on the name. An effect's source
is content too: its name (`EFFECT {effect: my-glow}`, given as `POST /effects` stores it) is an
asset name like any other, one namespace per user, listed and forgotten the same way. Only a
built-in effect's name is refused for one: a recipe's `effect: blur` always means the built-in.
"""

from __future__ import annotations

import time

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from artdag_common.cid import validate_cid
from artdag_common.db.tables import AssetRow
from artdag_common.errors import ForbiddenError, NotFoundError
from artdag_common.media_types import EFFECT_MEDIA_TYPE
from artdag_common.schemas import (
    AssetInput,
    AssetList,
    AssetListRequest,
    AssetRecord,
    AssetRequest,
    AssetResolved,
    AssetResolveRequest,
    Viewer,
)
from services.cache.service import ContentCatalog

SHARED = ""  # the scope of an admin's names for everyone


def _record(row: AssetRow) -> AssetRecord:
    shared = row.scope == SHARED
    return AssetRecord(
        name=row.name,
        cid=row.cid,
        shared=shared,
        owner=None if shared else row.scope,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _scope(viewer: Viewer | None, shared: bool) -> str:
    """Whose names a request reads or writes: the viewer's own, or (admins only) the shared ones."""
    if shared:
        if viewer is not None and not viewer.admin:
            raise ForbiddenError("only an admin may name shared assets", field="shared")
        return SHARED
    if viewer is None or viewer.user is None:
        raise ForbiddenError("log in to name assets", field="name")
    return viewer.user


class AssetBook:
    """The `assets` table."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], catalog: ContentCatalog) -> None:
        self._sessions = sessions
        self._catalog = catalog

    async def add(self, request: AssetInput) -> AssetRecord:
        """Name content the viewer may see (a name used before now points to the new cid)."""
        scope = _scope(request.viewer, request.shared)
        cid = validate_cid(request.cid)
        content = await self._catalog.get(cid, request.viewer)  # 404 for content the viewer may not see
        if content.media_type == EFFECT_MEDIA_TYPE:
            from artdag_effects.registry import refuse_builtin_name  # the effects load only when one is named

            refuse_builtin_name(request.name)
        now = time.time()
        async with self._sessions.begin() as session:
            row = await session.get(AssetRow, (scope, request.name))
            if row is None:
                row = AssetRow(scope=scope, name=request.name, cid=cid, created_at=now, updated_at=now)
                session.add(row)
            else:
                row.cid, row.updated_at = cid, now
            record = _record(row)
        if scope != SHARED:
            # The name is the user's way back to the content: they hold it, as an upload's owner does.
            await self._catalog.hold([cid], scope)
        return record

    async def list(self, request: AssetListRequest) -> AssetList:
        """The viewer's own names and the shared ones (a service asking: every name), by name."""
        query = select(AssetRow).order_by(AssetRow.name, AssetRow.scope)
        viewer = request.viewer
        if viewer is not None:
            scopes = [SHARED] + ([viewer.user] if viewer.user else [])
            query = query.where(AssetRow.scope.in_(scopes))
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
        return AssetList(assets=[_record(row) for row in rows])

    async def delete(self, request: AssetRequest) -> AssetRecord:
        """Forget a name (the content stays)."""
        scope = _scope(request.viewer, request.shared)
        async with self._sessions.begin() as session:
            row = await session.get(AssetRow, (scope, request.name))
            if row is None:
                where = "shared asset" if scope == SHARED else "asset of yours"
                raise NotFoundError(f"no {where} named {request.name!r}", field="name")
            record = _record(row)
            await session.delete(row)
        return record

    async def resolve(self, request: AssetResolveRequest) -> AssetResolved:
        """Each name's cid: the owner's own name first, then a shared one; unknown names are left out."""
        if not request.names:
            return AssetResolved(cids={})
        scopes = [SHARED] + ([request.owner] if request.owner else [])
        query = select(AssetRow).where(AssetRow.name.in_(sorted(set(request.names))), or_(AssetRow.scope.in_(scopes)))
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
        found: dict[str, str] = {}
        for row in sorted(rows, key=lambda r: r.scope != SHARED):  # shared first, the owner's overwrite them
            found[row.name] = row.cid
        return AssetResolved(cids=found)
