"""Copies of users' content at their storage providers: queued, made, verified, read back and removed.

Who gets what follows each provider's policy (`replicate`): `inputs` takes its owner's uploads
and imports, `outputs` their runs' outputs and provenance records, `all` both. Each copy is a
row in `content_locations` (pending → stored, or failed with the reason) and a message on the
durable work queue `artdag.task.replicate`; a cache service that dies mid-copy leaves the
message unacknowledged and another (or the same, restarted) makes the copy again. Every
connection to a provider runs on a `CheckedLoop` in a worker thread, under the same egress
rules as the provider's connection test.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, TypeVar

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from pydantic import ValidationError
from sqlalchemy import delete, false, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from artdag_common import subjects
from artdag_common.bus import delivery_count, keep_alive, publish_event, settle
from artdag_common.content_store import ContentStore, ContentWriter, LocalContentStore
from artdag_common.db.tables import Content, ContentHolder, StorageProvider
from artdag_common.db.tables import ContentLocation as LocationRow
from artdag_common.errors import ArtdagError, ForbiddenError, NotFoundError, PermanentError, RetryableError
from artdag_common.schemas import ContentLocation, ContentLocations, CopyRequest, ReplicationTask, Viewer
from services.cache.egress import run_checked
from services.cache.providers import ProviderBook, open_replica
from services.cache.replicas import Replica, cid_version_of

log = logging.getLogger(__name__)
T = TypeVar("T")

# Which policies take which kind of content.
INPUTS, OUTPUTS = "inputs", "outputs"
_TAKERS = {INPUTS: ("inputs", "all"), OUTPUTS: ("outputs", "all")}
PENDING, STORED, FAILED, REMOVING = "pending", "stored", "failed", "removing"
# One copy, read-back or removal at a provider, all its connections included.
TRANSFER_TIMEOUT_S = 1800.0
# What a failure says to the user: the error's class and a bounded message, never a secret
# (provider errors are ours, raised with messages that carry no config values).
_ERROR_CHARS = 300


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ArtdagError):
        return exc.message[:_ERROR_CHARS]
    if isinstance(exc, TimeoutError):
        return "the provider did not answer in time"
    # Like a failed connection test (providers.UNREACHABLE): no more than that, which would say what
    # answers where; the cause goes to the debug log.
    return "could not reach the provider, or it refused the copy"


class FileSource(ContentStore):
    """One file already known to hold `cid`, read as a store: a copy's source inside a checked loop."""

    def __init__(self, cid: str, path: Path) -> None:
        self.cid_version = cid_version_of(cid)
        self._cid = cid
        self._path = path

    def writer(self, *, max_bytes: int | None = None) -> ContentWriter:
        raise NotImplementedError("a FileSource is read only")

    async def put_file(self, path: Path) -> str:
        raise NotImplementedError("a FileSource is read only")

    async def exists(self, cid: str) -> bool:
        return cid == self._cid

    async def size(self, cid: str) -> int:
        await self._require(cid)
        return self._path.stat().st_size

    async def _require(self, cid: str) -> None:
        if cid != self._cid:
            raise NotFoundError(f"no content with cid {cid}", field="cid")

    async def read(self, cid: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        await self._require(cid)
        with self._path.open("rb") as handle:
            handle.seek(start)
            left = None if end is None else end - start + 1
            while left is None or left > 0:
                chunk = await asyncio.to_thread(handle.read, 1 << 20 if left is None else min(1 << 20, left))
                if not chunk:
                    return
                if left is not None:
                    left -= len(chunk)
                yield chunk

    async def local_path(self, cid: str, scratch: Path) -> Path:
        await self._require(cid)
        return self._path

    async def delete(self, cid: str) -> bool:
        raise NotImplementedError("a FileSource is read only")


class Replicator:
    """Queues, makes and removes copies; reads content back from them when the local store lacks it."""

    def __init__(
        self,
        js: JetStreamContext,
        sessions: async_sessionmaker[AsyncSession],
        book: ProviderBook,
        store: ContentStore,
        *,
        spool: Path,
        max_deliver: int,
        ack_wait_s: float,
    ) -> None:
        self.js = js
        self.sessions = sessions
        self.book = book
        self.store = store
        self.spool = spool
        self.max_deliver = max_deliver
        # A copy in progress says so well within the ack wait, or JetStream would hand it to another.
        self.keep_alive_s = ack_wait_s / 3
        self.cid_version = store.cid_version
        self._restoring: dict[str, asyncio.Task[None]] = {}
        self.counts = {"copies_stored": 0, "copies_failed": 0, "copies_removed": 0, "restored": 0}

    # -- queueing ---------------------------------------------------------------------------------

    async def replicate(self, cids: Iterable[str], owner: str | None, kind: str) -> int:
        """Queue copies of `cids` to `owner`'s providers whose policy takes `kind`; how many were queued."""
        wanted = sorted(set(cids))
        if owner is None or not wanted:
            return 0
        async with self.sessions() as session:
            providers = (
                await session.scalars(
                    select(StorageProvider).where(
                        StorageProvider.owner == owner, StorageProvider.replicate.in_(_TAKERS[kind])
                    )
                )
            ).all()
        queued = 0
        for provider in providers:
            for cid in wanted:
                queued += await self._queue_store(cid, provider.id, again=False)
        return queued

    async def _queue_store(self, cid: str, provider_id: str, *, again: bool) -> int:
        """Mark the copy pending and queue it; a copy that is stored or under way is left alone unless `again`."""
        now = time.time()
        async with self.sessions.begin() as session:
            row = await session.get(LocationRow, (cid, provider_id))
            if row is None:
                session.add(LocationRow(cid=cid, provider_id=provider_id, state=PENDING, attempts=0, updated_at=now))
            elif row.state in (PENDING, STORED) and not again:
                return 0
            else:
                row.state, row.error, row.updated_at = PENDING, None, now
        try:
            await self._publish(ReplicationTask(cid=cid, provider_id=provider_id, action="store"))
        except Exception as exc:  # noqa: BLE001 - the row stays pending: `requeue_stale` queues it again
            log.warning("could not queue the copy of %s to provider %s: %s", cid, provider_id, exc)
        return 1

    async def requeue_stale(self, older_than_s: float) -> int:
        """Queue again the copies and removals untouched for `older_than_s` (their message lost); how many."""
        cutoff = time.time() - older_than_s
        async with self.sessions() as session:
            stale = (
                await session.scalars(
                    select(LocationRow).where(
                        LocationRow.state.in_((PENDING, REMOVING)), LocationRow.updated_at < cutoff
                    )
                )
            ).all()
        for location in stale:
            action = "store" if location.state == PENDING else "remove"
            task = ReplicationTask(cid=location.cid, provider_id=location.provider_id, action=action, ref=location.ref)
            await self._publish(task)
        return len(stale)

    async def sweep(self, every_s: float, stopping: asyncio.Event) -> None:
        """Every `every_s`, queue again what has waited longer than that (see `requeue_stale`)."""
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), every_s)
            if stopping.is_set():
                return
            try:
                requeued = await self.requeue_stale(every_s)
            except Exception as exc:  # noqa: BLE001 - try again next time
                log.warning("could not queue stale copies again: %s", exc)
                continue
            if requeued:
                log.info("queued %d stale copies and removals again", requeued)

    async def _publish(self, task: ReplicationTask) -> None:
        await publish_event(self.js, subjects.TASK_REPLICATE, task)

    async def copy(self, request: CopyRequest) -> ContentLocations:
        """`cache.copy`: copy content the viewer may see to one of their providers (their default if none named)."""
        viewer = request.viewer
        async with self.sessions() as session:
            if request.provider_id is None:
                if viewer is None or viewer.user is None:
                    raise ForbiddenError("log in to copy content to a provider", field="provider_id")
                provider = await session.scalar(
                    select(StorageProvider).where(
                        StorageProvider.owner == viewer.user, StorageProvider.is_default.is_(True)
                    )
                )
                if provider is None:
                    raise NotFoundError("you have no default provider: name one with provider_id", field="provider_id")
            else:
                provider = await session.get(StorageProvider, request.provider_id)
                if provider is None or not _may_use(provider, viewer):
                    raise NotFoundError(f"no storage provider {request.provider_id}", field="provider_id")
            if viewer is not None and viewer.user is not None and not viewer.admin:
                held = await session.get(ContentHolder, (request.cid, viewer.user))
                if held is None:
                    raise NotFoundError(f"no content with cid {request.cid} that you hold", field="cid")
            if await session.get(Content, request.cid) is None:
                raise NotFoundError(f"no content with cid {request.cid}", field="cid")
            provider_id = provider.id
        await self._queue_store(request.cid, provider_id, again=True)
        return await self.locations(request.cid, viewer)

    # -- what there is ------------------------------------------------------------------------------

    async def locations(self, cid: str, viewer: Viewer | None) -> ContentLocations:
        """The copies of `cid` the viewer may know of: at their own providers (admins and services: all)."""
        query = (
            select(LocationRow, StorageProvider)
            .join(StorageProvider, StorageProvider.id == LocationRow.provider_id)
            .where(LocationRow.cid == cid)
            .order_by(StorageProvider.created_at)
        )
        if viewer is not None and not viewer.admin:
            # Anonymous viewers (published content) see no copies: `owner == None` would match ownerless rows.
            query = query.where(StorageProvider.owner == viewer.user) if viewer.user else query.where(false())
        async with self.sessions() as session:
            rows = (await session.execute(query)).all()
            content = await session.get(Content, cid)
        local = content is not None and not content.offloaded and await self.store.exists(cid)
        return ContentLocations(
            cid=cid,
            local=local,
            locations=[
                ContentLocation(
                    provider_id=provider.id,
                    provider_name=provider.name,
                    type=provider.type,
                    state=location.state,
                    error=location.error,
                    attempts=location.attempts,
                    updated_at=location.updated_at,
                )
                for location, provider in rows
            ],
        )

    # -- the work queue -------------------------------------------------------------------------------

    async def on_message(self, msg: Msg) -> None:
        """One copy or removal; its fate (ack, retry with back-off, give up) follows `settle`."""
        try:
            task = ReplicationTask.model_validate_json(msg.data)
        except ValidationError as exc:
            log.warning("malformed replication task: %s", exc)
            await msg.term()
            return
        last = delivery_count(msg) >= self.max_deliver
        error: BaseException | None = None
        beat = asyncio.create_task(keep_alive(msg, self.keep_alive_s))
        try:
            if task.action == "store":
                await self._store(task, last=last)
            else:
                await self._remove(task)
        except Exception as exc:  # noqa: BLE001 - settle() decides: permanent → term, else retry
            error = exc
        finally:
            beat.cancel()
        await settle(msg, error, max_deliver=self.max_deliver, base_delay_s=2.0)

    async def _store(self, task: ReplicationTask, *, last: bool) -> None:
        async with self.sessions.begin() as session:
            location = await session.get(LocationRow, (task.cid, task.provider_id))
            provider = await session.get(StorageProvider, task.provider_id)
            content = await session.get(Content, task.cid)
            if location is None or provider is None or content is None or location.state != PENDING:
                return  # deleted or done meanwhile: nothing to do
            location.attempts += 1
            location.updated_at = time.time()
        try:
            with tempfile.TemporaryDirectory(dir=self._scratch(), prefix="copy-") as scratch:
                path = await self._local_file(task.cid, Path(scratch))
                source = FileSource(task.cid, path)
                ref = await self._at_provider(provider, lambda replica: replica.store(task.cid, source))
        except Exception as exc:
            final = last or isinstance(exc, PermanentError | ForbiddenError)
            await self._set(task, FAILED if final else PENDING, error=_reason(exc))
            if final:
                self.counts["copies_failed"] += 1
            log.info("copy of %s to provider %s failed: %s", task.cid, task.provider_id, _reason(exc))
            log.debug("copy of %s to provider %s: %s: %s", task.cid, task.provider_id, type(exc).__name__, exc)
            if isinstance(exc, ForbiddenError):
                raise PermanentError(exc.message, field=exc.field) from None
            raise
        await self._set(task, STORED, ref=ref)
        self.counts["copies_stored"] += 1
        log.info("stored %s at provider %s", task.cid, task.provider_id)

    async def _remove(self, task: ReplicationTask) -> None:
        async with self.sessions() as session:
            provider = await session.get(StorageProvider, task.provider_id)
        if provider is not None:
            await self._at_provider(provider, lambda replica: replica.remove(task.cid, task.ref))
        async with self.sessions.begin() as session:
            await session.execute(
                delete(LocationRow).where(
                    LocationRow.cid == task.cid,
                    LocationRow.provider_id == task.provider_id,
                    LocationRow.state == REMOVING,
                )
            )
        self.counts["copies_removed"] += 1
        log.info("removed %s from provider %s", task.cid, task.provider_id)

    async def _set(
        self, task: ReplicationTask, state: str, *, error: str | None = None, ref: str | None = None
    ) -> None:
        values: dict[str, Any] = {"state": state, "error": error, "updated_at": time.time()}
        if ref is not None:
            values["ref"] = ref
        async with self.sessions.begin() as session:
            await session.execute(
                update(LocationRow)
                .where(
                    LocationRow.cid == task.cid,
                    LocationRow.provider_id == task.provider_id,
                    LocationRow.state == PENDING,
                )
                .values(**values)
            )

    async def _at_provider(self, provider: StorageProvider, work: Callable[[Replica], Awaitable[T]]) -> T:
        """`work(replica)` on a checked loop in a worker thread, with the provider owner's reach."""
        config = self.book.opened(provider)
        viewer = Viewer(user=provider.owner, admin=provider.privileged) if provider.owner else None
        config = await self.book.policy.admit(config, viewer)
        reach = await self.book.policy.reach(viewer)
        scratch = self._scratch()

        async def connected() -> T:
            async with AsyncExitStack() as stack:
                replica = await open_replica(provider.type, config, scratch, stack, self.cid_version)
                return await work(replica)

        return await asyncio.to_thread(run_checked, reach, connected, TRANSFER_TIMEOUT_S)

    def _scratch(self) -> Path:
        path = self.spool / "replication"
        path.mkdir(parents=True, exist_ok=True)
        return path

    async def _local_file(self, cid: str, scratch: Path) -> Path:
        """A file holding `cid`: the local store's own, or a copy of it; read back first if it is not local."""
        if not await self.store.exists(cid):
            await self.restore(cid)
        return await self.store.local_path(cid, scratch)

    # -- deletion follows -------------------------------------------------------------------------------

    async def forget(self, cid: str, owner: str | None) -> int:
        """Remove the copies of `cid` at `owner`'s providers (None: everyone's); how many removals were queued."""
        query = select(LocationRow, StorageProvider).join(
            StorageProvider, StorageProvider.id == LocationRow.provider_id
        )
        query = query.where(LocationRow.cid == cid)
        if owner is not None:
            query = query.where(StorageProvider.owner == owner)
        tasks: list[ReplicationTask] = []
        async with self.sessions.begin() as session:
            for location, provider in (await session.execute(query)).all():
                location.state, location.updated_at = REMOVING, time.time()
                tasks.append(ReplicationTask(cid=cid, provider_id=provider.id, action="remove", ref=location.ref))
        for task in tasks:
            await self._publish(task)
        return len(tasks)

    async def drop_provider(self, provider_id: str, *, keep_copies: bool) -> int:
        """Before a provider goes: queue its copies' removal (or keep them, untracked); how many removals."""
        async with self.sessions.begin() as session:
            locations = (await session.scalars(select(LocationRow).where(LocationRow.provider_id == provider_id))).all()
            if keep_copies:
                await session.execute(delete(LocationRow).where(LocationRow.provider_id == provider_id))
                return 0
        removed = 0
        provider_row = await self.book.row(provider_id)
        for location in locations:
            with contextlib.suppress(Exception):
                # The provider row goes right after: removals are made now, not queued for a worker
                # that would find no provider; what fails stays at the provider, and is logged.
                cid, ref = location.cid, location.ref
                await self._at_provider(provider_row, lambda replica: replica.remove(cid, ref))  # noqa: B023 - awaited here
                removed += 1
                continue
            log.warning("could not remove %s from provider %s while deleting it", location.cid, provider_id)
        async with self.sessions.begin() as session:
            await session.execute(delete(LocationRow).where(LocationRow.provider_id == provider_id))
        return removed

    # -- read back ---------------------------------------------------------------------------------------

    async def ensure_local(self, cid: str) -> None:
        """Make sure the local store holds `cid`, reading it back from a provider if it does not."""
        if await self.store.exists(cid):
            return
        await self.restore(cid)

    async def restore(self, cid: str) -> None:
        """Read `cid` back from a provider holding a verified copy (the owner's default first); one read per cid."""
        running = self._restoring.get(cid)
        if running is None:
            running = asyncio.create_task(self._restore(cid))
            self._restoring[cid] = running
            running.add_done_callback(lambda _: self._restoring.pop(cid, None))
        await asyncio.shield(running)

    async def _restore(self, cid: str) -> None:
        query = (
            select(LocationRow, StorageProvider)
            .join(StorageProvider, StorageProvider.id == LocationRow.provider_id)
            .where(LocationRow.cid == cid, LocationRow.state == STORED)
            .order_by(StorageProvider.is_default.desc(), StorageProvider.created_at)
        )
        async with self.sessions() as session:
            found = (await session.execute(query)).all()
        if not found:
            raise NotFoundError(f"content {cid} is not in the local store, nor at any provider", field="cid")
        failures: list[str] = []
        for location, provider in found:
            with tempfile.TemporaryDirectory(dir=self._scratch(), prefix="restore-") as scratch:
                landing = LocalContentStore(Path(scratch) / "store", cid_version=cid_version_of(cid))
                try:
                    ref = location.ref
                    await self._at_provider(provider, lambda replica: replica.fetch(cid, landing, ref))  # noqa: B023 - awaited here
                    path = await landing.local_path(cid, Path(scratch))
                    got = await self.store.put_file(path)
                except Exception as exc:  # noqa: BLE001 - the next provider may have it
                    failures.append(f"{provider.name}: {_reason(exc)}")
                    continue
                finally:
                    shutil.rmtree(Path(scratch) / "store", ignore_errors=True)
            if got != cid:  # pragma: no cover - fetch verified it; the local store hashed it again
                await self.store.delete(got)
                failures.append(f"{provider.name}: the copy hashes to {got}")
                continue
            async with self.sessions.begin() as session:
                # Just read: kept for `evict_min_age_s`, like anything used, so the reader that wanted it finds it.
                await session.execute(
                    update(Content).where(Content.cid == cid).values(offloaded=False, last_access=time.time())
                )
            self.counts["restored"] += 1
            log.info("read %s back from provider %s", cid, provider.id)
            return
        raise RetryableError(f"could not read {cid} back from its providers ({'; '.join(failures)})", field="cid")


def _may_use(provider: StorageProvider, viewer: Viewer | None) -> bool:
    return viewer is None or viewer.admin or (viewer.user is not None and provider.owner == viewer.user)
