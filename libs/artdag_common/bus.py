"""Connecting to NATS, publishing events, and deciding a work message's fate.

The fate of a message follows from the error its handler raised, in one place:
success → ack; `PermanentError` → terminate (never redelivered); anything else →
nak with back-off until the consumer's `max_deliver`, when the caller is told it is
the last attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import nats
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from pydantic import BaseModel

from artdag_common.codec import pack, unpack
from artdag_common.errors import PermanentError
from artdag_common.subjects import max_deliveries_advisory
from artdag_common.telemetry import inject_headers

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

ErrorCallback = Callable[[Exception], Awaitable[None]]


async def connect(
    url: str, name: str, *, connect_timeout_s: float = 5.0, closing: asyncio.Event | None = None
) -> NatsClient:
    """Connect with reconnects on; logs (not raises) disconnections, except once `closing` is set."""

    def quiet() -> bool:
        return closing is not None and closing.is_set()

    async def on_error(exc: Exception) -> None:
        if not quiet():
            log.warning("nats error: %s", exc)

    async def on_disconnect() -> None:
        if not quiet():
            log.warning("disconnected from nats")

    async def on_reconnect() -> None:
        log.info("reconnected to nats")

    return await nats.connect(
        servers=url.split(","),
        name=name,
        connect_timeout=connect_timeout_s,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        error_cb=on_error,
        disconnected_cb=on_disconnect,
        reconnected_cb=on_reconnect,
        drain_timeout=5,
    )


def encode(model: BaseModel) -> bytes:
    """A message's wire form: JSON, compressed when large (see `artdag_common.codec`)."""
    return pack(model.model_dump_json().encode("utf-8"))


def decode(model_type: type[M], data: bytes) -> M:
    """The message `encode` made (raises pydantic's `ValidationError` if it is not one)."""
    return model_type.model_validate_json(unpack(data))


async def publish_event(js: JetStreamContext, subject: str, event: BaseModel, *, msg_id: str | None = None) -> None:
    """Publish to a JetStream stream with trace headers and optional de-duplication id."""
    headers = inject_headers()
    if msg_id:
        headers["Nats-Msg-Id"] = msg_id
    await js.publish(subject, encode(event), headers=headers)


def delivery_count(msg: Msg) -> int:
    """How many times JetStream has delivered this message (1 on first delivery)."""
    try:
        return int(msg.metadata.num_delivered)
    except Exception:  # noqa: BLE001 - a core message has no metadata: count it as first delivery
        return 1


async def settle(msg: Msg, exc: BaseException | None, *, max_deliver: int, base_delay_s: float = 1.0) -> bool:
    """Ack, nak or terminate `msg` according to `exc`; True if it will not come back."""
    if exc is None:
        await msg.ack()
        return True
    if isinstance(exc, PermanentError):
        await msg.term()
        return True
    attempt = delivery_count(msg)
    if attempt >= max_deliver:
        await msg.term()
        return True
    await msg.nak(delay=min(base_delay_s * 2.0 ** (attempt - 1), 30.0))
    return False


async def keep_alive(msg: Msg, every_s: float) -> None:
    """Tell JetStream the work is still going (`in_progress`) until cancelled."""
    while True:
        await asyncio.sleep(every_s)
        try:
            await msg.in_progress()
        except Exception as exc:  # noqa: BLE001 - a lost heartbeat must not kill the work
            log.debug("in_progress failed: %s", exc)


async def consume(
    js: JetStreamContext,
    stream: str,
    durable: str,
    handler: Callable[[Msg], Awaitable[None]],
    *,
    concurrency: int,
    stopping: asyncio.Event,
    grace_s: float = 8.0,
) -> None:
    """Pull messages from a durable consumer and run `handler` on each, at most `concurrency` at once.

    Fetches one message at a time with a short timeout (long batch fetches can hold
    messages back). On `stopping`, takes no more work, waits up to `grace_s` for what
    is in flight, then unsubscribes (before any drain, which would otherwise hang).
    """
    sub = await js.pull_subscribe_bind(durable=durable, stream=stream)
    slots = asyncio.Semaphore(concurrency)
    in_flight: set[asyncio.Task[None]] = set()

    async def run(msg: Msg) -> None:
        try:
            await handler(msg)
        except Exception:
            log.exception("handler for %s failed", durable)
        finally:
            slots.release()

    try:
        while not stopping.is_set():
            await slots.acquire()
            if stopping.is_set():
                slots.release()
                break
            try:
                msgs = await sub.fetch(1, timeout=1.0)
            except nats.errors.TimeoutError:
                slots.release()
                continue
            except Exception as exc:  # noqa: BLE001 - connection blips: back off and keep consuming
                slots.release()
                log.warning("fetch from %s failed: %s", durable, exc)
                await asyncio.sleep(0.5)
                continue
            for msg in msgs:
                task = asyncio.create_task(run(msg))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
    finally:
        if in_flight:
            await asyncio.wait(in_flight, timeout=grace_s)
        try:
            await sub.unsubscribe()
        except Exception as exc:  # noqa: BLE001 - closing anyway
            log.debug("unsubscribe %s: %s", durable, exc)


DeadLetterHandler = Callable[[bytes, int], Awaitable[None]]


async def watch_dead_letters(
    nc: NatsClient, js: JetStreamContext, stream: str, durable: str, handler: DeadLetterHandler, *, queue: str
) -> Subscription:
    """Call `handler(payload, deliveries)` for each message the consumer gave up on, then remove it.

    A worker that crashes or hangs on every delivery never settles its message; JetStream
    stops redelivering it and says so in an advisory. This turns that silence into an
    event the owner of the work can act on (fail the run), once, in one replica.
    """

    async def on_advisory(msg: Msg) -> None:
        try:
            advisory = json.loads(msg.data)
            seq = int(advisory["stream_seq"])
            deliveries = int(advisory.get("deliveries", 0))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("malformed max-deliveries advisory: %s", exc)
            return
        try:
            stored = await js.get_msg(stream, seq)
        except nats.js.errors.NotFoundError:
            return  # another replica handled it already
        try:
            await handler(stored.data or b"", deliveries)
        except Exception:
            log.exception("dead-letter handler failed for %s seq %d", stream, seq)
            return
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_msg(stream, seq)

    return await nc.subscribe(max_deliveries_advisory(stream, durable), queue=queue, cb=on_advisory)
