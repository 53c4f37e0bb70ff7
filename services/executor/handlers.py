"""Step messages: decode, check the result index, claim, render, record, announce."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from typing import Any

from nats.aio.msg import Msg
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue
from opentelemetry import context as otel_context
from opentelemetry import trace
from pydantic import ValidationError

from artdag_common import streams, subjects
from artdag_common.bus import (
    Outgoing,
    decode,
    delivery_count,
    event_message,
    keep_alive,
    kv_message,
    outlasting,
    settle,
)
from artdag_common.errors import ArtdagError, PermanentError, RetryableError, public_message
from artdag_common.ids import check_run_id, check_step_id, content_key, content_result_key
from artdag_common.metrics import STEP_DURATION, STEPS
from artdag_common.operations import INLINE_NODE_TYPES
from artdag_common.registration import Registrar
from artdag_common.runtime import ServiceRuntime
from artdag_common.schemas import ContentOrigin, ContentRecord, StepEvent, StepStatus, StepTask
from artdag_common.telemetry import (
    CACHE,
    FRAMES,
    NODE_TYPE,
    RUN_ID,
    STEP_ID,
    current_run_id,
    exporting,
    extract_context,
    tracer,
)
from services.executor.claims import StepClaims
from services.executor.service import StepRenderer

log = logging.getLogger(__name__)

MAX_REMEMBERED_CANCELLATIONS = 10_000
_tracer = tracer(__name__)


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
        self.registrar = Registrar(runtime.nc, timeout_s=runtime.settings.rpc_timeout_s)
        self.results = results
        self.claims = StepClaims(claims, runtime.instance, lease_s=lease_s, heartbeat_s=heartbeat_s)
        self.heartbeat_s = heartbeat_s
        self.max_deliver = streams.STEP_WORKERS.max_deliver
        self.counts = {
            "rendered": 0,
            "result_hits": 0,
            "content_hits": 0,
            "failed": 0,
            "busy_elsewhere": 0,
            "dropped": 0,
        }
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
        run_token = current_run_id.set(task.run_id)
        try:
            if exporting():
                # A span only for an exported trace: made for nothing, it costs a tenth of a NOOP step.
                token = otel_context.attach(extract_context(msg.headers))
                try:
                    attributes = {RUN_ID: task.run_id, STEP_ID: task.step.step_id, NODE_TYPE: task.step.node_type}
                    with _tracer.start_as_current_span(f"step {task.step.node_type}", attributes=attributes):
                        await self._handle_in_slot(msg, task, media)
                finally:
                    otel_context.detach(token)
            else:
                await self._handle_in_slot(msg, task, media)
        finally:
            current_run_id.reset(run_token)
            if media:
                self.media_wanted -= 1

    async def _handle_in_slot(self, msg: Msg, task: StepTask, media: bool) -> None:
        if media:
            async with self._media:
                await self._handle(msg, task)
        else:
            await self._handle(msg, task)

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
        if task.step.node_type in INLINE_NODE_TYPES:
            # Rendering an inline step costs less than looking for its result or claiming it.
            await self._render(msg, task, coordinated=False)
            return
        # Look for a result (by step id, and by the content of the inputs: early cutoff) and take
        # the claim at once; a claim taken for a step that turns out to be done is released.
        # A fresh task (re-verification) renders even when a result is recorded.
        by_content = content_result_key(self._content_key(task))
        cid, same_content, claimed = await asyncio.gather(
            self._no_result() if task.fresh else self._result(step_id),
            self._no_result() if task.fresh else self._result(by_content),
            self.claims.take(step_id),
        )
        if cid is None and same_content is not None:
            # Inputs byte-identical to an earlier run's: its result, now found by step id too.
            cid = same_content
            self.counts["content_hits"] += 1
            await self.results.put(step_id, cid.encode())
        if cid is not None:
            if claimed:
                await self.claims.release(step_id)
            self.counts["result_hits"] += 1
            _outcome(task, "cached")
            await self._announce(task, StepStatus.CACHED, output_cid=cid)
            await msg.ack()
            return
        if not claimed:
            # Another worker is rendering this very step. Wait for its result (or for its
            # lease to lapse) rather than nak: a nak would spend one of the bounded deliveries.
            self.counts["busy_elsewhere"] += 1
            cid = await self.claims.await_holder(step_id, lambda: self._result(step_id), msg.in_progress)
            if cid is not None:
                self.counts["result_hits"] += 1
                _outcome(task, "cached")
                await self._announce(task, StepStatus.CACHED, output_cid=cid)
                await msg.ack()
                return
        await self._render(msg, task, coordinated=True)

    async def _render(self, msg: Msg, task: StepTask, *, coordinated: bool) -> None:
        """Render, record the result, announce it, settle the message.

        `coordinated` steps hold the claim (kept alive by heart-beats while they render) and
        announce RUNNING; inline steps do neither: they take microseconds, and two workers
        rendering one at once would only write the same bytes twice.
        """
        step_id = task.step.step_id
        heartbeat = asyncio.create_task(self._heartbeat(msg, step_id)) if coordinated else None
        started = time.monotonic()
        error: BaseException | None = None
        released = not coordinated
        # The RUNNING event goes out while the step renders; it is confirmed before anything follows it.
        running = asyncio.create_task(self._announce(task, StepStatus.RUNNING)) if coordinated else None
        try:
            output = await self.renderer.render(task)
            if running is not None:
                await running
            cid = output.cid
            record = ContentRecord(
                cid=cid,
                size=output.size,
                media_type=output.media_type,
                name=f"{task.step.name}{output.suffix}",
                origin=ContentOrigin.STEP_OUTPUT,
            )
            by_step = kv_message(streams.KV_RESULTS.bucket, step_id, cid.encode())
            if coordinated:
                # Metadata first: a media result must never point at content the cache does not know
                # (found again after a crash, it is announced as cached, without metadata).
                # (Outlasting a bus outage: rendering again would cost far more than waiting.)
                await outlasting(lambda: self.registrar.register(record), f"registering the output of {step_id}")
                # Both results recorded (acks awaited together) before the step is announced.
                by_content = kv_message(
                    streams.KV_RESULTS.bucket, content_result_key(self._content_key(task)), cid.encode()
                )
                await self.runtime.publisher.publish_many([by_step, by_content])
            self.counts["rendered"] += 1
            _outcome(task, "executed", time.monotonic() - started, output.frames)
            if heartbeat is not None:
                heartbeat.cancel()
            elapsed_s = time.monotonic() - started
            if released:
                # An inline step: its metadata rides with its completion (the planner registers many
                # steps' at once, before the run's state points at them); result and completion go
                # out together. Redelivered, it is made again, never found as a result, so its
                # metadata is never lost; nor is it looked up by content (early cutoff): making it
                # again is cheaper.
                completed = self._event(task, StepStatus.COMPLETED, output_cid=cid, elapsed_s=elapsed_s, output=record)
                await self.runtime.publisher.publish_many([by_step, completed])
            else:
                # The result is recorded: the claim may go while the completion is announced.
                completed = self._event(task, StepStatus.COMPLETED, output_cid=cid, elapsed_s=elapsed_s)
                await asyncio.gather(self.runtime.publisher.publish(completed), self.claims.release(step_id))
                released = True
        except Exception as exc:
            error = exc if isinstance(exc, ArtdagError) else RetryableError(f"{type(exc).__name__}: {exc}")
            if not isinstance(exc, ArtdagError):
                log.exception("step %s (%s) crashed", task.step.name, step_id)
        finally:
            if heartbeat is not None:
                heartbeat.cancel()
            if running is not None:
                with contextlib.suppress(Exception):
                    await running  # out before any FAILED that follows
            if not released:
                await self.claims.release(step_id)
        if error is not None:
            last = isinstance(error, PermanentError) or delivery_count(msg) >= self.max_deliver
            if last:
                self.counts["failed"] += 1
                _outcome(task, "failed", time.monotonic() - started)
                log.warning("step %s of run %s failed: %s", task.step.name, task.run_id, error)
                await self._announce(task, StepStatus.FAILED, error=str(error), elapsed_s=time.monotonic() - started)
        await settle(msg, error, max_deliver=self.max_deliver)

    def _content_key(self, task: StepTask) -> str:
        step = task.step
        return content_key(
            step.node_type,
            step.config,
            task.input_cids,
            step.op_version,
            self.runtime.settings.cluster_key_value,
            step.handoff,
        )

    async def _result(self, step_id: str) -> str | None:
        try:
            entry = await self.results.get(step_id)
        except KeyNotFoundError:
            return None
        cid = (entry.value or b"").decode()
        return cid if cid and await self.renderer.store.exists(cid) else None

    @staticmethod
    async def _no_result() -> str | None:
        return None

    async def _heartbeat(self, msg: Msg, step_id: str) -> None:
        """Keep the message and the claim alive while rendering."""
        alive = asyncio.create_task(keep_alive(msg, self.heartbeat_s))
        try:
            await self.claims.keep(step_id)
        finally:
            alive.cancel()

    async def _announce(self, task: StepTask, status: StepStatus, **details: Any) -> None:
        """Publish the step's event (see `_event` for the details), confirmed by its stream.

        A bus outage is waited out (`StreamPublisher`): a rendered step is not thrown away because its news
        could not go out.
        """
        await self.runtime.publisher.publish(self._event(task, status, **details))

    def _event(
        self,
        task: StepTask,
        status: StepStatus,
        *,
        output_cid: str | None = None,
        error: str | None = None,
        elapsed_s: float | None = None,
        output: ContentRecord | None = None,
    ) -> Outgoing:
        event = StepEvent(
            run_id=task.run_id,
            step_id=task.step.step_id,
            status=status,
            output_cid=output_cid,
            error=public_message(error) if error is not None else None,  # what failed, not where
            worker=self.runtime.instance,
            elapsed_s=elapsed_s,
            output=output,
        )
        return event_message(
            subjects.step_event(task.run_id, task.step.step_id),
            event,
            msg_id=f"{task.run_id}.{task.step.step_id}.{status.value}",
        )


def _outcome(task: StepTask, outcome: str, elapsed_s: float | None = None, frames: int | None = None) -> None:
    """Count a finished step, and mark its span: a cache hit, or a miss that rendered (how long, how many frames)."""
    node_type = task.step.node_type
    STEPS.add(1, {"node_type": node_type, "outcome": outcome})
    if elapsed_s is not None and outcome == "executed":
        STEP_DURATION.record(elapsed_s, {"node_type": node_type})
    if exporting():
        span = trace.get_current_span()
        span.set_attribute(CACHE, "hit" if outcome == "cached" else "miss")
        if frames is not None:
            span.set_attribute(FRAMES, frames)
        if outcome == "failed":
            span.set_status(trace.StatusCode.ERROR)
