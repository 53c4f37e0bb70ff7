"""Content metadata: register what was stored, answer what is known, decide what may go."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any, cast

from sqlalchemy import Select, Table, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from artdag_common.cid import validate_cid
from artdag_common.content_store import ContentStore
from artdag_common.db import transact
from artdag_common.db.tables import Content, ContentHolder, ContentLocation, ContentRef, PublicationRow
from artdag_common.disk import Ballast, is_disk_full
from artdag_common.errors import ConflictError, ForbiddenError, NotFoundError, PayloadTooLargeError
from artdag_common.media_types import EFFECT_MEDIA_TYPE
from artdag_common.schemas import (
    ContentDeleted,
    ContentList,
    ContentMetaUpdate,
    ContentOrigin,
    ContentRecord,
    MediaListRequest,
    Viewer,
)

log = logging.getLogger(__name__)

# Roles of a cid in a run. Content with a protected role is never deleted or evicted.
INPUT, OUTPUT, INTERMEDIATE, PROVENANCE = "input", "output", "intermediate", "provenance"
PROTECTED_ROLES = (INPUT, OUTPUT, PROVENANCE)
# Only content that can be made again is evicted to make room.
EVICTABLE_ORIGINS = (ContentOrigin.STEP_OUTPUT.value, ContentOrigin.ANALYSIS.value)
# Reading content refreshes its last access at most this often (a video seeks with many Range requests).
TOUCH_EVERY_S = 60.0
# What a user brings in counts against their quota (ARTDAG_QUOTA_BYTES); what their runs make is kept.
QUOTA_ORIGINS = (ContentOrigin.UPLOAD, ContentOrigin.IMPORT)


def _settle(done: asyncio.Future[ContentRecord], outcome: ContentRecord | Exception) -> None:
    if done.done():
        return
    if isinstance(outcome, Exception):
        done.set_exception(outcome)
    else:
        done.set_result(outcome)


_CONTENT_TABLE = cast(Table, Content.__table__)
_HOLDERS_TABLE = cast(Table, ContentHolder.__table__)
# The columns of `content` a registration sets from the record as given.
_CONTENT_COLUMNS = {"cid", "size", "media_type", "name", "created_at", "description", "owner"}


def _record_of(row: dict[str, Any]) -> ContentRecord:
    """The record of a `content` row read (or about to be written) as plain column values."""
    return ContentRecord(
        cid=row["cid"],
        size=row["size"],
        media_type=row["media_type"],
        name=row["name"],
        origin=ContentOrigin(row["origin"]),
        created_at=row["created_at"],
        description=row["description"],
        tags=list(row["tags"] or []),
        owner=row["owner"],
        pinned=bool(row["pinned"]),
        published=bool(row["published"]),
        last_access=row["last_access"],
        provenance_cid=row["provenance_cid"],
    )


def _record(row: Content) -> ContentRecord:
    return _record_of({column.key: getattr(row, column.key) for column in _CONTENT_TABLE.columns})


def _holding(user: str) -> Select[int, int]:
    """One query: how many items `user` holds, and their bytes."""
    return (
        select(func.count(), func.coalesce(func.sum(Content.size), 0))
        .join(ContentHolder, ContentHolder.cid == Content.cid)
        .where(ContentHolder.username == user)
    )


def _check_quota(session: Session, records: list[ContentRecord], quota_bytes: int) -> None:
    """Refuse (413) an upload or import that would take its owner past `quota_bytes` (0: no quota)."""
    if not quota_bytes:
        return
    incoming = [r for r in records if r.owner and r.origin in QUOTA_ORIGINS]
    if not incoming:
        return
    query = select(ContentHolder.cid, ContentHolder.username).where(
        ContentHolder.cid.in_(sorted({r.cid for r in incoming}))
    )
    held_now = {(cid, user) for cid, user in session.execute(query).all()}
    held: dict[str, int] = {}
    for record in incoming:
        assert record.owner is not None
        if (record.cid, record.owner) in held_now:
            continue
        if record.owner not in held:
            held[record.owner] = int(session.execute(_holding(record.owner)).one()[1])
        if held[record.owner] + record.size > quota_bytes:
            raise PayloadTooLargeError(
                f"{record.owner} holds {held[record.owner]:,} bytes; {record.size:,} more would pass the "
                f"quota of {quota_bytes:,} (ARTDAG_QUOTA_BYTES): delete some content first",
                field="quota_bytes",
            )
        held[record.owner] += record.size
        held_now.add((record.cid, record.owner))


def _register_rows(
    session: Session, records: list[ContentRecord], now: float, quota_bytes: int = 0
) -> list[ContentRecord]:
    """Register `records`: a look-up of the cids, one multi-row insert of the new ones, one update
    of the known ones' last access, and the holders (the ORM's unit of work cost more than the
    database, batch after batch of step outputs). Registering a cid again keeps the first name."""
    _check_quota(session, records, quota_bytes)
    content = _CONTENT_TABLE
    new: dict[str, dict[str, Any]] = {}
    filled: dict[str, dict[str, Any]] = {}  # known rows given a name or owner they lacked
    cids = sorted({r.cid for r in records})
    known = {
        row["cid"]: dict(row) for row in session.execute(select(content).where(content.c.cid.in_(cids))).mappings()
    }
    results: list[ContentRecord] = []
    for record in records:
        row = known.get(record.cid) or new.get(record.cid)
        if row is None:
            row = {
                **record.model_dump(include=_CONTENT_COLUMNS),
                "origin": record.origin.value,
                "tags": list(record.tags),
                "pinned": False,
                "published": False,
                "last_access": now,
                "provenance_cid": None,
            }
            new[record.cid] = row
        else:
            for column in ("name", "owner"):
                if row[column] is None and getattr(record, column):
                    row[column] = getattr(record, column)
                    if record.cid in known:
                        filled.setdefault(record.cid, {})[column] = row[column]
            if record.media_type == EFFECT_MEDIA_TYPE != row["media_type"]:
                # Text stored before as a plain file, now checked as an effect's source (POST /effects): one.
                row["media_type"] = EFFECT_MEDIA_TYPE
                if record.cid in known:
                    filled.setdefault(record.cid, {})["media_type"] = EFFECT_MEDIA_TYPE
            row["last_access"] = now
        results.append(_record_of(row))
    if new:
        session.execute(insert(content), list(new.values()))
    refreshed = sorted(set(known) - set(filled))
    if refreshed:
        # Registered again: the bytes were just stored, so content given up to providers is local again.
        session.execute(update(content).where(content.c.cid.in_(refreshed)).values(last_access=now, offloaded=False))
    for cid, values in filled.items():
        session.execute(update(content).where(content.c.cid == cid).values(last_access=now, offloaded=False, **values))
    _add_holders(session, {(r.cid, r.owner) for r in records if r.owner}, now)
    return results


def _add_holders(session: Session, holders: set[tuple[str, str]], now: float) -> int:
    """Insert the `(cid, user)` holders not there yet (plain statements: a run holds a thousand cids,
    and the ORM's unit of work cost ~30 ms); how many were new."""
    if not holders:
        return 0
    query = select(ContentHolder.cid, ContentHolder.username).where(
        ContentHolder.cid.in_(sorted({cid for cid, _ in holders}))
    )
    missing = sorted(holders - {(cid, user) for cid, user in session.execute(query).all()})
    if missing:
        session.execute(
            insert(_HOLDERS_TABLE), [{"cid": cid, "username": user, "created_at": now} for cid, user in missing]
        )
    return len(missing)


class ContentCatalog:
    """The `content` and `content_refs` tables, and the blobs they describe.

    Registering the same cid again keeps the first name and refreshes its last access.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        store: ContentStore | None = None,
        *,
        max_bytes: int | None = None,
        evict_min_age_s: float = 600.0,
        touch_every_s: float = TOUCH_EVERY_S,
        ballast: Ballast | None = None,
        quota_bytes: int = 0,
    ) -> None:
        self._sessions = sessions
        self.quota_bytes = quota_bytes
        self.ballast = ballast
        self._store = store
        self.max_bytes = max_bytes
        self.evict_min_age_s = evict_min_age_s
        self.touch_every_s = touch_every_s
        self._evicting = asyncio.Lock()
        self._registering: list[tuple[ContentRecord, asyncio.Future[ContentRecord]]] = []
        self._register_writer: asyncio.Task[None] | None = None
        # Content a storage provider holds a verified copy of may leave the disk (set where the replicator runs).
        self.offload_copied = False

    async def register(self, record: ContentRecord) -> ContentRecord:
        """Record `record` (or refresh it); returns once committed.

        Registrations that arrive while a commit is in flight are group-committed: the next
        transaction writes all of them (one SQLite commit for many step outputs).
        """
        validate_cid(record.cid)
        done: asyncio.Future[ContentRecord] = asyncio.get_running_loop().create_future()
        self._registering.append((record, done))
        if self._register_writer is None:
            self._register_writer = asyncio.create_task(self._register_queued())
        result = await done
        if self.max_bytes is not None:
            await self.evict()
        return result

    async def _register_queued(self) -> None:
        try:
            while self._registering:
                batch, self._registering = self._registering, []
                try:
                    results = await self._register_batch([record for record, _ in batch])
                except Exception as exc:  # noqa: BLE001 - handed to the callers waiting on it
                    if len(batch) == 1:
                        _settle(batch[0][1], exc)
                        continue
                    # One bad record must not fail the others: register them one by one.
                    for record, done in batch:
                        try:
                            _settle(done, (await self._register_batch([record]))[0])
                        except Exception as one:  # noqa: BLE001 - handed to its caller
                            _settle(done, one)
                else:
                    for (_, done), result in zip(batch, results, strict=True):
                        _settle(done, result)
        finally:
            self._register_writer = None
            for _, done in self._registering:
                done.cancel()
            self._registering = []

    async def _register_batch(self, records: list[ContentRecord]) -> list[ContentRecord]:
        """One transaction of plain statements for the whole batch (see `_register_rows`)."""
        now = time.time()
        return await transact(self._sessions, lambda session: _register_rows(session, records, now, self.quota_bytes))

    # -- who may see and change what -------------------------------------------------------

    async def _holds(self, session: AsyncSession, cid: str, user: str) -> bool:
        return (await session.get(ContentHolder, (cid, user))) is not None

    async def _may_see(self, session: AsyncSession, row: Content, viewer: Viewer | None) -> bool:
        if viewer is None or viewer.admin or row.published:
            return True
        return viewer.user is not None and await self._holds(session, row.cid, viewer.user)

    async def _may_change(self, session: AsyncSession, row: Content, viewer: Viewer | None) -> bool:
        if viewer is None or viewer.admin:
            return True
        return viewer.user is not None and await self._holds(session, row.cid, viewer.user)

    async def changeable(self, cid: str, viewer: Viewer | None) -> ContentRecord:
        """The content if `viewer` may change it (holds it, or is an admin); else not found / forbidden."""
        validate_cid(cid)
        async with self._sessions() as session:
            row = await session.get(Content, cid)
            if row is None or not await self._may_see(session, row, viewer):
                raise NotFoundError(f"no content with cid {cid}", field="cid")
            if not await self._may_change(session, row, viewer):
                raise ForbiddenError("only those who hold this content (and admins) may do this", field="cid")
            return _record(row)

    async def publication(self, cid: str) -> PublicationRow | None:
        """The recorded publication of `cid`, if it was published."""
        async with self._sessions() as session:
            return await session.get(PublicationRow, cid)

    async def record_publication(self, row: PublicationRow) -> tuple[PublicationRow, bool]:
        """Record a publication and mark the content published (deletion and eviction then refuse it).

        `(row, True)` if recorded now, `(the earlier row, False)` if a concurrent publish won.
        """
        try:
            async with self._sessions.begin() as session:
                session.add(row)
                content = await session.get(Content, row.cid)
                if content is not None:
                    content.published = True
        except IntegrityError:
            earlier = await self.publication(row.cid)
            if earlier is None:
                raise
            return earlier, False
        return row, True

    async def hold(self, cids: Iterable[str], user: str) -> int:
        """Let `user` see and change each of `cids` (what their run used and made); idempotent."""
        wanted = sorted(set(cids))
        if not wanted:
            return 0
        now = time.time()

        def work(session: Session) -> int:
            known = session.scalars(select(Content.cid).where(Content.cid.in_(wanted)))
            return _add_holders(session, {(cid, user) for cid in known}, now)

        return await transact(self._sessions, work)

    async def get(self, cid: str, viewer: Viewer | None = None) -> ContentRecord:
        """Content metadata; another user's unpublished content is "not found" to `viewer`."""
        validate_cid(cid)
        async with self._sessions() as session:
            row = await session.get(Content, cid)
            if row is None or not await self._may_see(session, row, viewer):
                raise NotFoundError(f"no content with cid {cid}", field="cid")
            return _record(row)

    async def get_many(self, cids: list[str], viewer: Viewer | None = None) -> list[ContentRecord]:
        """The records of `cids` that exist and `viewer` may see, in the order asked: two queries in all."""
        for cid in cids:
            validate_cid(cid)
        wanted = sorted(set(cids))
        async with self._sessions() as session:
            rows = {row.cid: row for row in await session.scalars(select(Content).where(Content.cid.in_(wanted)))}
            if viewer is not None and not viewer.admin:
                held: set[str] = set()
                if viewer.user is not None:
                    query = select(ContentHolder.cid).where(
                        ContentHolder.username == viewer.user, ContentHolder.cid.in_(sorted(rows))
                    )
                    held = set(await session.scalars(query))
                rows = {cid: row for cid, row in rows.items() if row.published or cid in held}
            return [_record(rows[cid]) for cid in dict.fromkeys(cids) if cid in rows]

    async def usage(self, user: str) -> tuple[int, int]:
        """How many items `user` holds, and their bytes."""
        async with self._sessions() as session:
            items, size = (await session.execute(_holding(user))).one()
        return int(items), int(size)

    async def access(self, cid: str, viewer: Viewer | None = None) -> ContentRecord:
        """Like `get`, for a read of the bytes: refreshes the last access (what eviction goes by)."""
        record = await self.get(cid, viewer)
        now = time.time()
        if record.last_access is None or now - record.last_access >= self.touch_every_s:
            async with self._sessions.begin() as session:
                row = await session.get(Content, cid)
                if row is not None:
                    row.last_access = now
                    record = _record(row)
        return record

    async def update_meta(self, request: ContentMetaUpdate) -> ContentRecord:
        validate_cid(request.cid)
        patch = request.patch
        async with self._sessions.begin() as session:
            row = await session.get(Content, request.cid)
            if row is None or not await self._may_see(session, row, request.viewer):
                raise NotFoundError(f"no content with cid {request.cid}", field="cid")
            if not await self._may_change(session, row, request.viewer):
                raise ForbiddenError("only those who hold this content (and admins) may change it", field="cid")
            if patch.name is not None:
                row.name = patch.name or None
            if patch.description is not None:
                row.description = patch.description or None
            if patch.tags is not None:
                row.tags = list(patch.tags)
            if patch.pinned is not None:
                row.pinned = patch.pinned
            return _record(row)

    async def list_media(self, request: MediaListRequest) -> ContentList:
        query = select(Content)
        count = select(func.count()).select_from(Content)
        if request.media_type:
            kind = request.media_type
            condition = Content.media_type == kind if "/" in kind else Content.media_type.startswith(f"{kind}/")
            query = query.where(condition)
            count = count.where(condition)
        viewer = request.viewer
        if viewer is not None and not viewer.admin:
            held = select(ContentHolder.cid).where(ContentHolder.username == viewer.user)
            condition = (
                Content.published.is_(True)
                if viewer.user is None
                else (Content.published.is_(True) | Content.cid.in_(held))
            )
            query = query.where(condition)
            count = count.where(condition)
        query = query.order_by(Content.created_at.desc(), Content.cid).limit(request.limit).offset(request.offset)
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
            total = int((await session.scalar(count)) or 0)
        return ContentList(items=[_record(r) for r in rows], total=total, limit=request.limit, offset=request.offset)

    # -- deletion and space ------------------------------------------------------------

    async def _refusal(self, session: AsyncSession, row: Content) -> str | None:
        """Why `row` must stay, or None if it may go."""
        if row.pinned:
            return 'it is pinned (unpin it first: PATCH /cache/{cid}/meta {"pinned": false})'
        if row.published:
            return "it is published to L2"
        refs = (
            await session.execute(
                select(ContentRef.role, ContentRef.run_id)
                .where(ContentRef.cid == row.cid, ContentRef.role.in_(PROTECTED_ROLES))
                .order_by(ContentRef.role, ContentRef.run_id)
                .limit(3)
            )
        ).all()
        if refs:
            role, run_id = refs[0]
            what = {INPUT: "an input", OUTPUT: "the output", PROVENANCE: "the provenance record"}[role]
            more = f" (and {len(refs) - 1} more reference{'s' if len(refs) > 2 else ''})" if len(refs) > 1 else ""
            return f"it is {what} of run {run_id}{more}"
        return None

    async def delete(self, cid: str, viewer: Viewer | None = None) -> ContentDeleted:
        """Delete an intermediate or an orphan (row, references, blob); refuse anything a run or user keeps.

        A user who holds content that others hold too only lets go of it: the bytes stay for the others.
        On a disk full to the last byte the database cannot write the deletion: the ballast is given
        up for it (deleting is how room is made), and made again once there is room.
        """
        validate_cid(cid)
        try:
            deleted = await self._delete(cid, viewer)
        except OperationalError as exc:
            if not is_disk_full(exc) or self.ballast is None or not await asyncio.to_thread(self.ballast.release):
                raise
            log.warning("the disk is full: gave up the ballast %s to delete %s", self.ballast.path, cid)
            deleted = await self._delete(cid, viewer)
        if self.ballast is not None:
            await asyncio.to_thread(self.ballast.ensure)
        return deleted

    async def _delete(self, cid: str, viewer: Viewer | None) -> ContentDeleted:
        async with self._sessions.begin() as session:
            row = await session.get(Content, cid)
            if row is None or not await self._may_see(session, row, viewer):
                raise NotFoundError(f"no content with cid {cid}", field="cid")
            if not await self._may_change(session, row, viewer):
                raise ForbiddenError("only those who hold this content (and admins) may delete it", field="cid")
            if viewer is not None and viewer.user is not None and not viewer.admin:
                others = await session.scalar(
                    select(func.count())
                    .select_from(ContentHolder)
                    .where(ContentHolder.cid == cid, ContentHolder.username != viewer.user)
                )
                if others:
                    await session.execute(
                        delete(ContentHolder).where(ContentHolder.cid == cid, ContentHolder.username == viewer.user)
                    )
                    return ContentDeleted(cid=cid, blob_deleted=False)
            reason = await self._refusal(session, row)
            if reason is not None:
                raise ConflictError(f"cannot delete {cid}: {reason}", field="cid")
            await session.execute(delete(ContentRef).where(ContentRef.cid == cid))
            await session.execute(delete(ContentHolder).where(ContentHolder.cid == cid))
            await session.delete(row)
        # The row goes first: a blob without a row is only wasted space, a row without its blob is a lie.
        blob_deleted = await self._store.delete(cid) if self._store is not None else False
        log.info("deleted %s (blob %s)", cid, "removed" if blob_deleted else "was absent")
        return ContentDeleted(cid=cid, blob_deleted=blob_deleted)

    async def total_bytes(self) -> int:
        async with self._sessions() as session:
            local = select(func.coalesce(func.sum(Content.size), 0)).where(Content.offloaded.is_(False))
            return int((await session.scalar(local)) or 0)

    async def evict(self) -> list[str]:
        """Delete least-recently-used intermediates until the store is under `max_bytes`; the cids evicted."""
        if self.max_bytes is None:
            return []
        async with self._evicting:
            total = await self.total_bytes()
            if total <= self.max_bytes:
                return []
            protected = select(ContentRef.cid).where(ContentRef.role.in_(PROTECTED_ROLES))
            query = (
                select(Content.cid, Content.size)
                .where(
                    Content.origin.in_(EVICTABLE_ORIGINS),
                    Content.pinned.is_(False),
                    Content.published.is_(False),
                    Content.cid.not_in(protected),
                    # Copied to a provider by hand: kept, and given up only as copied content is.
                    Content.cid.not_in(select(ContentLocation.cid)),
                    func.coalesce(Content.last_access, Content.created_at) <= time.time() - self.evict_min_age_s,
                )
                .order_by(func.coalesce(Content.last_access, Content.created_at), Content.cid)
            )
            evicted: list[str] = []
            async with self._sessions() as session:
                candidates = (await session.execute(query)).all()
            for cid, size in candidates:
                if total <= self.max_bytes:
                    break
                try:
                    await self.delete(cid)
                except (ConflictError, NotFoundError):
                    continue  # became protected or went away meanwhile
                total -= size
                evicted.append(cid)
            if total > self.max_bytes:
                total = await self._offload(total, evicted)
            if total > self.max_bytes:
                log.warning(
                    "content store holds %d bytes, over CACHE_MAX_BYTES=%d, with nothing left to evict",
                    total,
                    self.max_bytes,
                )
            elif evicted:
                log.info("evicted %d intermediates to stay under %d bytes", len(evicted), self.max_bytes)
            return evicted

    async def _offload(self, total: int, evicted: list[str]) -> int:
        """Give up the local bytes of least-recently-used content that a provider holds a verified copy of.

        The record stays (marked `offloaded`): a download or a run reads the bytes back. Pinned
        content and content used within `evict_min_age_s` stay local. The total left.
        """
        if not self.offload_copied:
            return total
        copied = select(ContentLocation.cid).where(ContentLocation.state == "stored")
        query = (
            select(Content.cid, Content.size)
            .where(
                Content.cid.in_(copied),
                Content.offloaded.is_(False),
                Content.pinned.is_(False),
                func.coalesce(Content.last_access, Content.created_at) <= time.time() - self.evict_min_age_s,
            )
            .order_by(func.coalesce(Content.last_access, Content.created_at), Content.cid)
        )
        async with self._sessions() as session:
            candidates = (await session.execute(query)).all()
        for cid, size in candidates:
            if self.max_bytes is None or total <= self.max_bytes:
                break
            # Marked first: a reader that finds the bytes gone then knows to read them back.
            async with self._sessions.begin() as session:
                await session.execute(update(Content).where(Content.cid == cid).values(offloaded=True))
            if self._store is not None:
                await self._store.delete(cid)
            total -= size
            evicted.append(cid)
            log.info("gave up the local copy of %s: a storage provider holds it", cid)
        return total

    # -- what runs refer to -------------------------------------------------------------

    async def record_refs(self, run_id: str, refs: Iterable[tuple[str, str]]) -> int:
        """Remember that run `run_id` used each `(cid, role)`; idempotent. How many were new."""
        wanted = {(cid, role) for cid, role in refs if cid}

        def work(session: Session) -> int:
            rows = session.execute(select(ContentRef.cid, ContentRef.role).where(ContentRef.run_id == run_id))
            new = sorted(wanted - {(cid, role) for cid, role in rows})
            if new:
                session.execute(insert(ContentRef), [{"cid": cid, "run_id": run_id, "role": role} for cid, role in new])
            return len(new)

        return await transact(self._sessions, work)

    async def refs(self, cid: str) -> list[tuple[str, str]]:
        """`(run_id, role)` of every run that refers to `cid`."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(ContentRef.run_id, ContentRef.role).where(ContentRef.cid == cid).order_by(ContentRef.run_id)
            )
            return [(run_id, role) for run_id, role in rows.all()]

    async def link_provenance(self, cid: str, provenance_cid: str) -> None:
        """Point an output's metadata at its provenance record."""
        async with self._sessions.begin() as session:
            row = await session.get(Content, cid)
            if row is None:
                raise NotFoundError(f"no content with cid {cid}", field="cid")
            row.provenance_cid = provenance_cid
