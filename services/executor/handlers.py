"""Step messages: decode, check the result index, claim, render, record, announce."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict

from nats.aio.msg import Msg
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from pydantic import BaseModel, ValidationError

from artdag_common import rpc, streams, subjects
from artdag_common.bus import decode, delivery_count, keep_alive, publish_event, settle
from artdag_common.errors import ArtdagError, PermanentError, RetryableError
from artdag_common.ids import check_run_id, check_step_id, content_key, content_result_key
from artdag_common.runtime import ServiceRuntime
from artdag_common.schemas import ContentOrigin, ContentRecord, StepEvent, StepStatus, StepTask
from artdag_common.telemetry import extract_context, tracer
from services.executor.service import INLINE_NODE_TYPES, StepRenderer

log = logging.getLogger(__name__)

MAX_REMEMBERED_CANCELLATIONS = 10_000
_tracer = tracer(__name__)


class Lease(BaseModel):
    """The value of a claim: who renders the step, and until when unless renewed."""

    worker: str
    expires_at: float


class StepWorker:
    """One executor replica's handling of `artdag.task.step` messages."""

    def __init__(
        self,
        runtime: ServiceRuntime,
        renderer: StepRenderer,
        results: KeyValue,
        claims: KeyValue,
        heartbeat_s: float,
        lease_s: float,
        media_slots: int = 1,
    ) -> None:
        self.runtime = runtime
        self.renderer = renderer
        self.results = results
        self.claims = claims
        self.heartbeat_s = heartbeat_s
        self.lease_s = lease_s
        self.max_deliver = streams.STEP_WORKERS.max_deliver
        self.counts = {"rendered": 0, "result_hits": 0, "failed": 0, "busy_elsewhere": 0, "dropped": 0}
        self.cancelled: OrderedDict[str, None] = OrderedDict()
        # Media work runs at most `media_slots` at once; inline steps (NOOP) do not wait for a slot.
        self.media_slots = media_slots
        self._media = asyncio.Semaphore(media_slots)
        self.media_wanted = 0  # media steps received and not finished (running or waiting for a slot)

    def admit(self) -> int:
        """How many more messages the consumer may ask for before they arrive (see `bus.consume`).

        As many as there are idle media slots: a message might be media work, and media work
        fetched but not startable would sit here while another replica idles.
        """
        return self.media_slots - self.media_wanted

    async def handle(self, msg: Msg) -> None:
        try:
            task = decode(StepTask, msg.data)
            check_run_id(task.run_id)
            check_step_id(task.step.step_id)
        except (ValidationError, ArtdagError) as exc:
            log.warning("dropping malformed step task: %s", exc)
            await msg.term()
            return
        # Counted before the first await: the consumer asks `admit` right after handing this over.
        media = task.step.node_type not in INLINE_NODE_TYPES
        if media:
            self.media_wanted += 1
        try:
            from opentelemetry import context as otel_context

            token = otel_context.attach(extract_context(msg.headers))
            try:
                with _tracer.start_as_current_span(f"step {task.step.node_type}") as span:
                    span.set_attribute("artdag.run_id", task.run_id)
                    span.set_attribute("artdag.step_id", task.step.step_id)
                    if media:
                        async with self._media:
                            await self._handle(msg, task)
                    else:
                        await self._handle(msg, task)
            finally:
                otel_context.detach(token)
        finally:
            if media:
                self.media_wanted -= 1

    def on_cancelled(self, run_id: str) -> None:
        """Remember a cancelled run so that its queued steps are dropped, not rendered."""
        self.cancelled[run_id] = None
        while len(self.cancelled) > MAX_REMEMBERED_CANCELLATIONS:
            self.cancelled.popitem(last=False)

    async def _handle(self, msg: Msg, task: StepTask) -> None:
        step_id = task.step.step_id
        if task.run_id in self.cancelled:
            self.counts["dropped"] += 1
            await msg.ack()
            return
        # Look for a result and take the claim at once (one round trip, not two); a claim
        # taken for a step that turns out to be done already is released straight away.
        # A fresh task (re-verification) renders even when a result is recorded.
        cid, claimed = await asyncio.gather(
            self._no_result() if task.fresh else self._result(step_id), self._claim(step_id)
        )
        if cid is not None:
            if claimed:
                await self._release(step_id)
            self.counts["result_hits"] += 1
            await self._announce(task, StepStatus.CACHED, output_cid=cid)
            await msg.ack()
            return
        if not claimed:
            # Another worker is rendering this very step. Wait for its result (or for its
            # lease to lapse) rather than nak: a nak would spend one of the bounded deliveries.
            self.counts["busy_elsewhere"] += 1
            cid = await self._await_other_worker(msg, step_id)
            if cid is not None:
                self.counts["result_hits"] += 1
                await self._announce(task, StepStatus.CACHED, output_cid=cid)
                await msg.ack()
                return
        heartbeat = asyncio.create_task(self._heartbeat(msg, step_id))
        started = time.monotonic()
        error: BaseException | None = None
        released = False
        # The RUNNING event goes out while the step renders; it is confirmed before anything follows it.
        running = asyncio.create_task(self._announce(task, StepStatus.RUNNING))
        try:
            output = await self.renderer.render(task)
            await running
            cid = output.cid
            # Metadata first: a result must never point at content the cache service does not know.
            record = ContentRecord(
                cid=cid,
                size=output.size,
                media_type=output.media_type,
                name=f"{task.step.name}{output.suffix}",
                origin=ContentOrigin.STEP_OUTPUT,
            )
            await rpc.call(
                self.runtime.nc,
                "cache",
                "register",
                record,
                ContentRecord,
                timeout_s=self.runtime.settings.rpc_timeout_s,
            )
            key = content_key(
                task.step.node_type,
                task.step.config,
                task.input_cids,
                task.step.op_version,
                self.runtime.settings.cluster_key_value,
            )
            # Both results recorded (acks awaited together) before the step is announced.
            await asyncio.gather(
                self.results.put(step_id, cid.encode()), self.results.put(content_result_key(key), cid.encode())
            )
            self.counts["rendered"] += 1
            heartbeat.cancel()
            # The result is recorded: the claim may go while the completion is announced.
            await asyncio.gather(
                self._announce(task, StepStatus.COMPLETED, output_cid=cid, elapsed_s=time.monotonic() - started),
                self._release(step_id),
            )
            released = True
        except Exception as exc:
            error = exc if isinstance(exc, ArtdagError) else RetryableError(f"{type(exc).__name__}: {exc}")
            if not isinstance(exc, ArtdagError):
                log.exception("step %s (%s) crashed", task.step.name, step_id)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(Exception):
                await running  # out before any FAILED that follows
            if not released:
                await self._release(step_id)
        if error is not None:
            last = isinstance(error, PermanentError) or delivery_count(msg) >= self.max_deliver
            if last:
                self.counts["failed"] += 1
                log.warning("step %s of run %s failed: %s", task.step.name, task.run_id, error)
                await self._announce(task, StepStatus.FAILED, error=str(error), elapsed_s=time.monotonic() - started)
        await settle(msg, error, max_deliver=self.max_deliver)

    async def _release(self, step_id: str) -> None:
        with contextlib.suppress(Exception):
            await self.claims.delete(step_id)

    async def _result(self, step_id: str) -> str | None:
        try:
            entry = await self.results.get(step_id)
        except KeyNotFoundError:
            return None
        cid = (entry.value or b"").decode()
        return cid if cid and await self.renderer.store.exists(cid) else None

    def _lease(self) -> bytes:
        return Lease(worker=self.runtime.instance, expires_at=time.time() + self.lease_s).model_dump_json().encode()

    @staticmethod
    async def _no_result() -> str | None:
        return None

    async def _claim(self, step_id: str) -> bool:
        """Take the step's lease: create it, renew our own, or take over one that has lapsed."""
        try:
            await self.claims.create(step_id, self._lease())
            return True
        except KeyWrongLastSequenceError:
            pass
        try:
            entry = await self.claims.get(step_id)
        except KeyNotFoundError:
            return False  # released a moment ago: the caller looks for the result and tries again
        try:
            held = Lease.model_validate_json(entry.value or b"")
        except ValidationError:
            held = Lease(worker="?", expires_at=0.0)
        if held.worker != self.runtime.instance and held.expires_at > time.time():
            return False
        try:
            # Compare-and-set on the revision we read: of two takers, one wins.
            await self.claims.update(step_id, self._lease(), last=entry.revision)
        except KeyWrongLastSequenceError:
            return False
        if held.worker != self.runtime.instance:
            log.info("step %s: took over the lapsed lease of %s", step_id, held.worker)
        return True

    async def _await_other_worker(self, msg: Msg, step_id: str) -> str | None:
        """Wait (with heart-beats) until the claim holder's result appears or its claim lapses.

        Returns the result's cid, or None once this worker holds the claim itself.
        """
        last_beat = time.monotonic()
        while True:
            await asyncio.sleep(0.5)
            cid = await self._result(step_id)
            if cid is not None:
                return cid
            if await self._claim(step_id):
                return None
            if time.monotonic() - last_beat > self.heartbeat_s:
                await msg.in_progress()
                last_beat = time.monotonic()

    async def _heartbeat(self, msg: Msg, step_id: str) -> None:
        """Keep the message and the lease alive while rendering."""
        alive = asyncio.create_task(keep_alive(msg, self.heartbeat_s))
        try:
            while True:
                await asyncio.sleep(self.heartbeat_s)
                with contextlib.suppress(Exception):
                    await self.claims.put(step_id, self._lease())
        finally:
            alive.cancel()

    async def _announce(
        self,
        task: StepTask,
        status: StepStatus,
        *,
        output_cid: str | None = None,
        error: str | None = None,
        elapsed_s: float | None = None,
    ) -> None:
        event = StepEvent(
            run_id=task.run_id,
            step_id=task.step.step_id,
            status=status,
            output_cid=output_cid,
            error=error,
            worker=self.runtime.instance,
            elapsed_s=elapsed_s,
        )
        await publish_event(
            self.runtime.js,
            subjects.step_event(task.run_id, task.step.step_id),
            event,
            msg_id=f"{task.run_id}.{task.step.step_id}.{status.value}",
        )
