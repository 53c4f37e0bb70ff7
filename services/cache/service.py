"""Content metadata: register what was stored, answer what is known about a cid."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from artdag_common.cid import validate_cid
from artdag_common.db.tables import Content
from artdag_common.errors import NotFoundError
from artdag_common.schemas import ContentOrigin, ContentRecord


def _record(row: Content) -> ContentRecord:
    return ContentRecord(
        cid=row.cid,
        size=row.size,
        media_type=row.media_type,
        name=row.name,
        origin=ContentOrigin(row.origin),
        created_at=row.created_at,
    )


class ContentCatalog:
    """The `content` table: one row per cid; registering the same cid again keeps the first name."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def register(self, record: ContentRecord) -> ContentRecord:
        validate_cid(record.cid)
        async with self._sessions.begin() as session:
            row = await session.get(Content, record.cid)
            if row is None:
                row = Content(
                    cid=record.cid,
                    size=record.size,
                    media_type=record.media_type,
                    name=record.name,
                    origin=record.origin.value,
                    created_at=record.created_at,
                )
                session.add(row)
            elif row.name is None and record.name:
                row.name = record.name
            return _record(row)

    async def get(self, cid: str) -> ContentRecord:
        validate_cid(cid)
        async with self._sessions() as session:
            row = await session.get(Content, cid)
            if row is None:
                raise NotFoundError(f"no content with cid {cid}", field="cid")
            return _record(row)
