"""Run events the cache service follows: record what a finished run used and made, and its provenance."""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable

from nats.aio.msg import Msg
from pydantic import ValidationError

from artdag_common.bus import decode, settle
from artdag_common.content_store import ContentStore
from artdag_common.errors import NotFoundError, PermanentError, RetryableError
from artdag_common.keys import L1Keys
from artdag_common.registration import store_document
from artdag_common.schemas import (
    ContentOrigin,
    InfrastructureRef,
    Plan,
    RunFinished,
    RunState,
    RunStatus,
)
from services.cache.provenance import (
    infrastructure_documents,
    provenance_json,
    provenance_record,
    run_refs,
    sign_provenance,
)
from services.cache.publish import user_handle
from services.cache.service import PROVENANCE, ContentCatalog

log = logging.getLogger(__name__)


class RunFollower:
    """On `artdag.event.finished.<id>` of a completed run: content references, then the output's provenance.

    The message holds the run's final state; the plan is content at its `plan_cid`. Nothing is
    asked of the planner.
    """

    def __init__(
        self,
        catalog: ContentCatalog,
        store: ContentStore,
        *,
        rendered_by: str,
        max_deliver: int,
        keys: L1Keys | None = None,
        on_outputs: Callable[[list[str], str | None], Awaitable[int]] | None = None,
        ensure_local: Callable[[str], Awaitable[None]] | None = None,
        l2_domain: str | None = None,
    ) -> None:
        self.l2_domain = l2_domain
        self._infrastructure: dict[str, InfrastructureRef] | None = None
        self.keys = keys
        self.on_outputs = on_outputs
        self.ensure_local = ensure_local
        self.catalog = catalog
        self.store = store
        self.rendered_by = rendered_by
        self.max_deliver = max_deliver
        self.hostname = socket.gethostname()
        self.counts = {"runs_recorded": 0, "provenance_records": 0}

    async def on_message(self, msg: Msg) -> None:
        error: BaseException | None = None
        try:
            finished = decode(RunFinished, msg.data)
            if finished.state.status == RunStatus.COMPLETED:
                await self.completed(finished.state)
        except ValidationError as exc:
            log.warning("malformed run-finished message on %s: %s", msg.subject, exc)
        except Exception as exc:  # noqa: BLE001 - settle() decides: permanent → term, else retry
            error = exc
            log.warning("run event %s: %s", msg.subject, exc)
        await settle(msg, error, max_deliver=self.max_deliver)

    async def completed(self, state: RunState) -> str | None:
        """Record a completed run's references and provenance; the provenance record's cid (None without output)."""
        run_id = state.run_id
        plan = await self._plan(state)
        refs = run_refs(state)
        await self.catalog.record_refs(run_id, refs)
        if state.owner:
            # What the run used and made is its owner's to see (the plan too).
            await self.catalog.hold(
                [*(cid for cid, _ in refs), *([state.plan_cid] if state.plan_cid else [])], state.owner
            )
        self.counts["runs_recorded"] += 1
        if not state.output_cid:
            return None
        try:
            output = await self.catalog.get(state.output_cid)
            output_name = output.name
        except NotFoundError:
            output_name = None
        rendered_by = user_handle(state.owner, self.l2_domain) if state.owner else self.rendered_by
        record = provenance_record(
            state,
            plan,
            output_name=output_name,
            rendered_by=rendered_by,
            infrastructure=await self._infrastructure_refs(state.owner),
        )
        if self.keys is not None:
            record = sign_provenance(record, self.keys)
        cid = await self._store_json(provenance_json(record), f"provenance-{run_id}.json", state.owner)
        await self.catalog.record_refs(run_id, [(cid, PROVENANCE)])
        await self.catalog.link_provenance(state.output_cid, cid)
        self.counts["provenance_records"] += 1
        log.info("run %s: provenance %s for output %s", run_id, cid, state.output_cid)
        if self.on_outputs is not None:
            # Copies to the owner's providers: queued durably, so a retried event queues nothing twice.
            await self.on_outputs([state.output_cid, cid], state.owner)
        return cid

    async def _store_json(self, body: bytes, name: str, owner: str | None) -> str:
        """Store a provenance document and register it; its cid."""
        record = await store_document(
            self.store, body, self.catalog.register, name=name, origin=ContentOrigin.PROVENANCE, owner=owner
        )
        return record.cid

    async def _infrastructure_refs(self, owner: str | None) -> dict[str, InfrastructureRef]:
        """The software and hardware documents, stored once per process (their CIDs do not change)."""
        if self._infrastructure is None:
            refs: dict[str, InfrastructureRef] = {}
            for role, (name, body) in infrastructure_documents(self.hostname).items():
                cid = await self._store_json(body, f"{name.replace(':', '-')}.json", None)
                refs[role] = InfrastructureRef(name=name, cid=cid)
            self._infrastructure = refs
        if owner:
            # Whoever holds the record may read what it points to.
            await self.catalog.hold([ref.cid for ref in self._infrastructure.values()], owner)
        return self._infrastructure

    async def _plan(self, state: RunState) -> Plan:
        """The run's final plan, read from the store (the planner keeps it as content)."""
        if not state.plan_cid:
            raise PermanentError(f"run {state.run_id} finished without a stored plan")
        try:
            if self.ensure_local is not None:
                await self.ensure_local(state.plan_cid)  # offloaded to a storage provider since: read back
            return Plan.model_validate_json(await self.store.get_bytes(state.plan_cid))
        except NotFoundError:
            # With planner replicas, the one that announces the run may do so before the one that stored
            # the final plan has registered it: the message comes back (settle's back-off) until it has.
            raise RetryableError(f"run {state.run_id}: its plan {state.plan_cid} is not stored yet") from None
