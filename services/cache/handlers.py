"""Run events the cache service follows: record what a finished run used and made, and its provenance."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable, Callable

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from pydantic import ValidationError

from artdag_common import rpc
from artdag_common.bus import delivery_count, settle
from artdag_common.content_store import ContentStore
from artdag_common.contracts import Planner
from artdag_common.errors import NotFoundError, RetryableError
from artdag_common.keys import L1Keys
from artdag_common.schemas import (
    ContentOrigin,
    ContentRecord,
    InfrastructureRef,
    RunEvent,
    RunRequest,
    RunState,
    RunStatus,
)
from services.cache.provenance import (
    infrastructure_documents,
    provenance_json,
    provenance_record,
    run_refs,
    sign_provenance,
    unsettled,
)
from services.cache.publish import user_handle
from services.cache.service import PROVENANCE, ContentCatalog

log = logging.getLogger(__name__)

# A completed run whose state does not show everything yet (see `unsettled`) is asked for again
# every SETTLE_POLL_S for SETTLE_WAIT_S, then its event comes back later; from the
# SETTLE_DELIVERIES-th delivery on, what there is gets recorded.
SETTLE_POLL_S = 0.05
SETTLE_WAIT_S = 2.0
SETTLE_DELIVERIES = 3


class RunFollower:
    """On `artdag.event.run.<id>.completed`: content references, then the output's provenance record."""

    def __init__(
        self,
        nc: NatsClient,
        catalog: ContentCatalog,
        store: ContentStore,
        *,
        rendered_by: str,
        max_deliver: int,
        timeout_s: float,
        keys: L1Keys | None = None,
        on_outputs: Callable[[list[str], str | None], Awaitable[int]] | None = None,
        l2_domain: str | None = None,
    ) -> None:
        self.l2_domain = l2_domain
        self._infrastructure: dict[str, InfrastructureRef] | None = None
        self.keys = keys
        self.on_outputs = on_outputs
        self.nc = nc
        self.catalog = catalog
        self.store = store
        self.rendered_by = rendered_by
        self.max_deliver = max_deliver
        self.timeout_s = timeout_s
        self.hostname = socket.gethostname()
        self.counts = {"runs_recorded": 0, "provenance_records": 0}

    async def on_message(self, msg: Msg) -> None:
        error: BaseException | None = None
        try:
            event = RunEvent.model_validate_json(msg.data)
            if event.status == RunStatus.COMPLETED:
                await self.completed(event.run_id, settled_only=delivery_count(msg) < SETTLE_DELIVERIES)
        except ValidationError as exc:
            log.warning("malformed run event on %s: %s", msg.subject, exc)
        except Exception as exc:  # noqa: BLE001 - settle() decides: permanent → term, else retry
            error = exc
            log.warning("run event %s: %s", msg.subject, exc)
        await settle(msg, error, max_deliver=self.max_deliver)

    async def completed(self, run_id: str, *, settled_only: bool = False) -> str | None:
        """Record the run's references and provenance; the provenance record's cid (None without output).

        `settled_only`: raise `RetryableError` rather than record a state that does not show
        everything yet (`unsettled`) after waiting a moment for it.
        """
        request = RunRequest(run_id=run_id)
        state = await self._settled_state(request, settled_only=settled_only)
        plan = await rpc.call(self.nc, Planner.get_plan, request, timeout_s=self.timeout_s)
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
        cid = await self.store.put_bytes(body)
        record = ContentRecord(
            cid=cid,
            size=len(body),
            media_type="application/json",
            name=name,
            origin=ContentOrigin.PROVENANCE,
            owner=owner,
        )
        await self.catalog.register(record)
        return cid

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

    async def _settled_state(self, request: RunRequest, *, settled_only: bool) -> RunState:
        deadline = time.monotonic() + SETTLE_WAIT_S
        while True:
            state = await rpc.call(self.nc, Planner.get_run, request, timeout_s=self.timeout_s)
            missing = unsettled(state)
            if not missing:
                return state
            if time.monotonic() >= deadline:
                if settled_only:
                    raise RetryableError(f"run {state.run_id} does not show {', '.join(missing[:5])} yet")
                log.warning("run %s recorded without %s", state.run_id, ", ".join(missing[:5]))
                return state
            await asyncio.sleep(SETTLE_POLL_S)
