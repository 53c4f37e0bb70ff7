"""The `recipes` table: recipes stored by the cid of their canonical form."""

from __future__ import annotations

from contextlib import suppress

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from artdag_common.db.tables import RecipeHolder, RecipeRow
from artdag_common.errors import ForbiddenError, InvalidInputError, NotFoundError
from artdag_common.recipe import Recipe, RecipeRef, parse_recipe
from artdag_common.schemas import RecipeInputInfo, RecipeRecord, Viewer, now


def _record(row: RecipeRow) -> RecipeRecord:
    recipe = None
    if "owner" in row.text or "registry" in row.text:  # most recipes have neither: no need to parse them again
        with suppress(InvalidInputError):  # a text stored under an older parser is shown without them
            recipe = parse_recipe(row.text)
    return RecipeRecord(
        recipe_id=row.recipe_id,
        name=row.name,
        version=row.version,
        description=row.description,
        inputs=[RecipeInputInfo.model_validate(i) for i in row.inputs["inputs"]],
        text=row.text,
        example=row.example,
        owner=row.owner,
        created_at=row.created_at,
        recipe_owner=recipe.owner if recipe is not None else None,
        registry=recipe.registry if recipe is not None else None,
    )


class RecipeBook:
    """Upload (validated, idempotent by recipe id), list, get, delete."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def upload(self, text: str, *, example: bool = False, owner: str | None = None) -> RecipeRecord:
        recipe = parse_recipe(text)
        return await self._store(recipe, text, example, owner)

    async def _store(self, recipe: Recipe, text: str, example: bool, owner: str | None = None) -> RecipeRecord:
        async with self._sessions.begin() as session:
            row = await session.get(RecipeRow, recipe.recipe_id)
            if row is None:
                row = RecipeRow(
                    recipe_id=recipe.recipe_id,
                    name=recipe.name,
                    version=recipe.version,
                    description=recipe.description,
                    text=text,
                    inputs={"inputs": [i.model_dump() for i in recipe.inputs.values()]},
                    example=example,
                    owner=owner,
                    created_at=now(),
                )
                session.add(row)
            elif row.owner is None and owner is not None and not row.example:
                row.owner = owner
            if owner is not None and await session.get(RecipeHolder, (recipe.recipe_id, owner)) is None:
                session.add(RecipeHolder(recipe_id=recipe.recipe_id, username=owner, created_at=now()))
            return _record(row)

    @staticmethod
    async def _visible(session: AsyncSession, row: RecipeRow, viewer: Viewer | None) -> bool:
        if viewer is None or viewer.admin or row.example:
            return True
        return viewer.user is not None and await session.get(RecipeHolder, (row.recipe_id, viewer.user)) is not None

    async def get(self, recipe_id: str, viewer: Viewer | None = None) -> RecipeRecord:
        """A recipe by CID, name (the newest `viewer` may see) or name@cid; one they may not see is not found."""
        async with self._sessions() as session:
            return _record(await self._find(session, RecipeRef.parse(recipe_id), viewer))

    async def _find(self, session: AsyncSession, ref: RecipeRef, viewer: Viewer | None) -> RecipeRow:
        if ref.cid is not None:
            row = await session.get(RecipeRow, ref.cid)
            if row is None or not await self._visible(session, row, viewer) or ref.name not in (None, row.name):
                raise NotFoundError(f"no recipe {ref}", field="recipe_id")
            return row
        query = select(RecipeRow).where(RecipeRow.name == ref.name).order_by(RecipeRow.created_at.desc()).limit(1)
        if viewer is not None and not viewer.admin:
            held = select(RecipeHolder.recipe_id).where(RecipeHolder.username == viewer.user)
            query = query.where(RecipeRow.example.is_(True) | RecipeRow.recipe_id.in_(held))
        row = await session.scalar(query)
        if row is None:
            raise NotFoundError(f"no recipe named {ref.name!r}", field="recipe_id")
        return row

    async def list(self, limit: int, offset: int, viewer: Viewer | None = None) -> tuple[list[RecipeRecord], int]:
        """Recipes newest first; a non-admin `viewer` sees the ones they uploaded and the examples."""
        count = select(func.count()).select_from(RecipeRow)
        query = select(RecipeRow).order_by(RecipeRow.created_at.desc())
        if viewer is not None and not viewer.admin:
            held = select(RecipeHolder.recipe_id).where(RecipeHolder.username == viewer.user)
            mine = RecipeRow.example.is_(True) | RecipeRow.recipe_id.in_(held)
            count, query = count.where(mine), query.where(mine)
        async with self._sessions() as session:
            total = (await session.execute(count)).scalar_one()
            rows = (await session.execute(query.limit(limit).offset(offset))).scalars()
            return [_record(r) for r in rows], total

    async def delete(self, recipe_id: str, viewer: Viewer | None = None) -> bool:
        """Delete a recipe; a user who shares it with others only lets go of it. True if the recipe went."""
        async with self._sessions.begin() as session:
            row = await self._find(session, RecipeRef.parse(recipe_id), viewer)
            recipe_id = row.recipe_id
            if viewer is not None and not viewer.admin:
                if row.example:
                    raise ForbiddenError("only an admin may delete an example recipe", field="recipe_id")
                await session.execute(
                    delete(RecipeHolder).where(
                        RecipeHolder.recipe_id == recipe_id, RecipeHolder.username == viewer.user
                    )
                )
                others = await session.scalar(
                    select(func.count()).select_from(RecipeHolder).where(RecipeHolder.recipe_id == recipe_id)
                )
                if others:
                    return False
            await session.execute(delete(RecipeHolder).where(RecipeHolder.recipe_id == recipe_id))
            await session.delete(row)
            return True
