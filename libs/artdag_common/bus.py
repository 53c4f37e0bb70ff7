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
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from pydantic import BaseModel

from artdag_common.bus_access import BusLogin, inbox_prefix
from artdag_common.codec import pack, unpack_or_raw
from artdag_common.errors import PermanentError, RetryableError
from artdag_common.subjects import max_deliveries_advisory
from artdag_common.telemetry import inject_headers

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

ErrorCallback = Callable[[Exception], Awaitable[None]]


async def connect(
    url: str,
    name: str,
    *,
    login: BusLogin | None = None,
    tls: ssl.SSLContext | None = None,
    connect_timeout_s: float = 5.0,
    closing: asyncio.Event | None = None,
) -> NatsClient:
    """Connect with reconnects on; logs (not raises) disconnections, except once `closing` is set
    or the client was closed on purpose.

    `login`: the user to connect as; its replies then arrive under its own inbox prefix, the
    only inboxes the server lets it read (see `bus_access`).
    """
    client = NatsClient()
    credentials: dict[str, Any] = {}
    if login is not None:
        credentials = {"user": login.user, "password": login.password, "inbox_prefix": inbox_prefix(login.user)}
    if tls is not None:
        credentials["tls"] = tls

    def quiet() -> bool:
        # nats-py marks a client closed before it calls back about the disconnection it made.
        return client.is_closed or (closing is not None and closing.is_set())

    async def on_error(exc: Exception) -> None:
        if not quiet():
            log.warning("nats error: %s", exc)

    async def on_disconnect() -> None:
        if not quiet():
            log.warning("disconnected from nats")

    async def on_reconnect() -> None:
        log.info("reconnected to nats")

    # nats-py annotates its timeouts as int but sleeps on them: fractions of a second work.
    await client.connect(
        servers=url.split(","),
        name=name,
        connect_timeout=connect_timeout_s,  # type: ignore[arg-type]
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,  # type: ignore[arg-type]
        error_cb=on_error,
        disconnected_cb=on_disconnect,
        reconnected_cb=on_reconnect,
        drain_timeout=5,
        **credentials,
    )
    return client


def encode(model: BaseModel) -> bytes:
    """A message's wire form: JSON, compressed when large (see `artdag_common.codec`)."""
    return pack(model.model_dump_json().encode("utf-8"))


def decode(model_type: type[M], data: bytes) -> M:
    """The message `encode` made (raises pydantic's `ValidationError` if it is not one)."""
    return model_type.model_validate_json(unpack_or_raw(data))


@dataclass(frozen=True)
class Outgoing:
    """A message for a JetStream stream: subject, wire bytes, headers."""

    subject: str
    data: bytes
    headers: dict[str, str] | None = None


def event_message(subject: str, event: BaseModel, *, msg_id: str | None = None, trace: str | None = None) -> Outgoing:
    """`event` for `subject` with trace headers and an optional de-duplication id.

    `trace`, a W3C `traceparent`, puts the message in that trace instead of the current one
    (a run's steps belong to the run's trace, whichever event happened to make them ready).
    """
    headers = {"traceparent": trace} if trace else inject_headers()
    if msg_id:
        headers["Nats-Msg-Id"] = msg_id
    return Outgoing(subject, encode(event), headers or None)


async def publish_event(
    js: JetStreamContext, subject: str, event: BaseModel, *, msg_id: str | None = None, trace: str | None = None
) -> None:
    """Publish to a JetStream stream with trace headers and optional de-duplication id; awaits the ack."""
    message = event_message(subject, event, msg_id=msg_id, trace=trace)
    await js.publish(message.subject, message.data, headers=message.headers)


class StreamError(Exception):
    """A stream refused a message or a request, no stream takes the subject, or none answered in time."""


class StreamUnavailableError(StreamError):
    """No stream answered: none takes the subject right now (a leader being elected), or not in time."""


TRANSIENT: tuple[type[BaseException], ...] = (
    RetryableError,
    StreamUnavailableError,
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    nats.js.errors.ServiceUnavailableError,
    nats.js.errors.NoStreamResponseError,
)
"""What a bus outage (a restarting server, a leader being elected) raises: worth trying again."""

T = TypeVar("T")


async def outlasting(call: Callable[[], Awaitable[T]], what: str, *, within_s: float = 60.0) -> T:
    """`call()`, tried again with backoff while the bus is out (`TRANSIENT`), for up to `within_s`
    from the first failure (a long call that meets an outage late still gets the whole time).

    For what must not be lost to a short outage: a step's events, a run's start. Anything else
    (and the last transient error) is raised.
    """
    deadline: float | None = None
    delay = 0.25
    while True:
        try:
            return await call()
        except TRANSIENT as exc:
            if deadline is None:
                deadline = time.monotonic() + within_s
            if time.monotonic() + delay > deadline:
                raise
            log.warning("%s: %s; trying again in %.2f s", what, exc or type(exc).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 4.0)


class StreamPublisher:
    """Publishing to JetStream streams, many messages at once, each confirmed by its stream.

    nats-py's `js.publish` is a request per message (a token, a timer, a wait, a parsed
    reply object); a step sends several stream messages, and that bookkeeping was a fifth
    of an executor's CPU. Here every message carries a reply subject under one inbox, each
    ack resolves its future, and a batch is awaited (and timed out) as a whole. A KV put is
    a message on `$KV.<bucket>.<key>` (see `kv_message`).
    """

    def __init__(self, nc: NatsClient, *, timeout_s: float = 5.0, outlast_s: float = 60.0) -> None:
        self.nc = nc
        self.timeout_s = timeout_s
        self.outlast_s = outlast_s
        self._prefix = nc.new_inbox() + "."
        self._waiting: dict[str, asyncio.Future[Msg]] = {}
        self._sent = 0
        self._sub: Subscription | None = None
        self._subscribing = asyncio.Lock()

    async def publish(self, message: Outgoing) -> None:
        await self.publish_many([message])

    async def publish_many(self, messages: list[Outgoing]) -> None:
        """Send all of `messages`, then wait until every one is stored; raises on the first refusal.

        A bus outage (a stream without a leader for a moment, a server restarting) is waited out
        for up to `outlast_s`, sending again what was not confirmed: results and claims are
        keyed, events and tasks carry message ids, so a message stored twice counts once.
        """
        if not messages:
            return
        await outlasting(
            lambda: self._publish_once(messages), f"publishing to {messages[0].subject}", within_s=self.outlast_s
        )

    async def _publish_once(self, messages: list[Outgoing]) -> None:
        if self._sub is None:
            async with self._subscribing:
                if self._sub is None:
                    self._sub = await self.nc.subscribe(self._prefix + "*", cb=self._on_ack)
        loop = asyncio.get_running_loop()
        tokens: list[str] = []
        futures: list[asyncio.Future[Msg]] = []
        try:
            for message in messages:
                self._sent += 1
                token = str(self._sent)
                future: asyncio.Future[Msg] = loop.create_future()
                self._waiting[token] = future
                tokens.append(token)
                futures.append(future)
                reply = self._prefix + token
                await self.nc.publish(message.subject, message.data, reply=reply, headers=message.headers)
            async with asyncio.timeout(self.timeout_s):
                acks = await asyncio.gather(*futures)
        except TimeoutError:
            raise StreamUnavailableError(f"no ack from the stream within {self.timeout_s} s") from None
        finally:
            for token in tokens:
                self._waiting.pop(token, None)
        for message, ack in zip(messages, acks, strict=True):
            _check_ack(message.subject, ack)

    async def _on_ack(self, msg: Msg) -> None:
        future = self._waiting.pop(msg.subject[len(self._prefix) :], None)
        if future is not None and not future.done():
            future.set_result(msg)


# Keys read per request by `kv_get_many` (the server's limit for one request is higher).
KV_GET_BATCH = 256


async def kv_get_many(nc: NatsClient, bucket: str, keys: list[str], *, timeout_s: float = 5.0) -> dict[str, bytes]:
    """The current values of `keys` in a KV bucket made with `direct` reads, many keys a request.

    A JetStream batched direct get (`multi_last`): the stream answers with the last message
    of each subject it has, then an end-of-batch status. Absent and deleted keys are left out.
    The requests for a long list go out together.
    """
    found: dict[str, bytes] = {}
    prefix = f"$KV.{bucket}."

    async def read(chunk: list[str]) -> None:
        inbox = nc.new_inbox()
        ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        async def collect(msg: Msg) -> None:
            headers = msg.headers or {}
            status = headers.get("Status")
            if status:
                if not ended.done():
                    ended.set_result(status)
                return
            if headers.get("KV-Operation") in ("DEL", "PURGE"):
                return
            subject = headers.get("Nats-Subject", "")
            if subject.startswith(prefix):
                found[subject[len(prefix) :]] = msg.data

        sub = await nc.subscribe(inbox, cb=collect)
        try:
            request = {"multi_last": [prefix + key for key in chunk], "batch": len(chunk)}
            await nc.publish(f"$JS.API.DIRECT.GET.KV_{bucket}", json.dumps(request).encode(), reply=inbox)
            async with asyncio.timeout(timeout_s):
                status = await ended
        except TimeoutError:
            raise StreamUnavailableError(f"no answer from the {bucket} bucket within {timeout_s} s") from None
        finally:
            await sub.unsubscribe()
        if status == "503":
            raise StreamUnavailableError(f"reading the {bucket} bucket answered {status}")
        if status not in ("204", "404"):  # end of batch; nothing found
            raise StreamError(f"reading the {bucket} bucket answered {status}")

    async def read_all() -> None:
        await asyncio.gather(*(read(keys[i : i + KV_GET_BATCH]) for i in range(0, len(keys), KV_GET_BATCH)))

    # A bucket without a leader for a moment (a server lost) answers 503: asked again.
    await outlasting(read_all, f"reading the {bucket} bucket")
    return found


def kv_message(bucket: str, key: str, value: bytes) -> Outgoing:
    """A KV put as a stream message (what `KeyValue.put` sends)."""
    return Outgoing(f"$KV.{bucket}.{key}", value)


def _check_ack(subject: str, ack: Msg) -> None:
    headers = ack.headers or {}
    status = headers.get("Status")
    if status == "503":
        raise StreamUnavailableError(f"no stream takes {subject}")
    if status:
        raise StreamError(f"publishing to {subject} answered {status} {headers.get('Description', '')}")
    if b'"error"' in ack.data:
        try:
            error = json.loads(ack.data).get("error") or {}
        except ValueError:
            error = {}
        description = error.get("description") or ack.data[:200].decode(errors="replace")
        raise StreamError(f"the stream refused {subject}: {description}")


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


# A pull request waits this long on the server for messages; the client forgets it a little later
# (a request lost in a reconnect is never answered).
PULL_EXPIRES_S = 1.0
PULL_FORGET_S = PULL_EXPIRES_S + 2.0
PULL_BACKOFF_S = 0.2


async def consume(
    js: JetStreamContext,
    stream: str,
    durable: str,
    handler: Callable[[Msg], Awaitable[None]],
    *,
    concurrency: int,
    stopping: asyncio.Event,
    grace_s: float = 8.0,
    admit: Callable[[], int] | None = None,
) -> None:
    """Pull messages from a durable consumer and run `handler` on each, at most `concurrency` at once.

    Keeps pull requests outstanding for exactly the free capacity ("ask for N, top up"):
    each request has its own reply subject, so every message (and the status that ends a
    request) is accounted to it, and a message is handed to its handler the moment it
    arrives (nothing is held back until a batch fills). `admit`, if given, caps how many
    messages may be requested-but-not-yet-arrived at any moment (an executor uses it to
    keep media work it cannot start yet from piling up in one replica). On `stopping`,
    asks for no more work, waits up to `grace_s` for what is in flight, then unsubscribes
    (before any drain, which would otherwise hang).
    """
    nc = js._nc
    prefix = getattr(js, "_prefix", "$JS.API")
    next_subject = f"{prefix}.CONSUMER.MSG.NEXT.{stream}.{durable}"
    inbox = nc.new_inbox()
    in_flight: set[asyncio.Task[None]] = set()
    ending: set[asyncio.Task[None]] = set()
    # Outstanding pull requests, each with a reply subject of its own: token -> the request.
    requests: dict[int, _PullRequest] = {}
    wake = asyncio.Event()
    trouble: list[str] = []
    counter = 0

    async def run(msg: Msg) -> None:
        try:
            await handler(msg)
        except Exception:
            log.exception("handler for %s failed", durable)
        finally:
            # Out of `in_flight` before the loop wakes: a done-callback would run only after the
            # loop had looked, found no room, and gone back to sleep until the pull expired.
            current = asyncio.current_task()
            if current is not None:
                in_flight.discard(current)
            wake.set()

    async def end(token: int) -> None:
        request = requests.pop(token, None)
        if request is not None and request.sub is not None:
            with contextlib.suppress(Exception):
                await request.sub.unsubscribe()

    def end_later(token: int) -> None:
        # Not from inside the subscription's own callback: unsubscribing cancels the task running it.
        task = asyncio.create_task(end(token))
        ending.add(task)
        task.add_done_callback(ending.discard)

    def on_reply(token: int) -> Callable[[Msg], Awaitable[None]]:
        async def deliver(msg: Msg) -> None:
            request = requests.get(token)
            status = msg.headers.get("Status") if msg.headers else None
            if status:
                if status != "100" and request is not None:  # all but a heartbeat end it (408 expired, 404, 409…)
                    request.owed = 0
                    end_later(token)
                    if status != "408":
                        # Not a plain expiry (no responders, consumer gone, limits): do not ask again at once.
                        trouble.append(status)
                    wake.set()
                return
            if request is not None:
                request.owed -= 1
                if request.owed == 0:
                    end_later(token)
            task = asyncio.create_task(run(msg))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            wake.set()

        return deliver

    async def relay_stop() -> None:
        await stopping.wait()
        wake.set()

    relay = asyncio.create_task(relay_stop())
    try:
        while not stopping.is_set():
            wake.clear()
            if trouble:
                log.debug("pull from %s answered %s; backing off", durable, ", ".join(trouble))
                trouble.clear()
                await asyncio.sleep(PULL_BACKOFF_S)
            now = time.monotonic()
            for token in [t for t, r in requests.items() if r.forget_at <= now]:
                await end(token)
            owed = sum(r.owed for r in requests.values())
            free = concurrency - len(in_flight) - owed
            if admit is not None:
                free = min(free, admit() - owed)
            if free > 0:
                counter += 1
                token = counter
                request = _PullRequest(owed=free, forget_at=now + PULL_FORGET_S)
                requests[token] = request
                body = {"batch": free, "expires": int(PULL_EXPIRES_S * 1_000_000_000)}
                try:
                    request.sub = await nc.subscribe(f"{inbox}.{token}", cb=on_reply(token))
                    await nc.publish(next_subject, json.dumps(body).encode(), reply=f"{inbox}.{token}")
                except Exception as exc:  # noqa: BLE001 - connection blips: back off and keep consuming
                    await end(token)
                    log.warning("pull from %s failed: %s", durable, exc)
                    await asyncio.sleep(0.5)
                    continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(PULL_EXPIRES_S):
                    await wake.wait()
    finally:
        relay.cancel()
        if in_flight:
            await asyncio.wait(in_flight, timeout=grace_s)
        for token in list(requests):
            await end(token)


@dataclass
class _PullRequest:
    owed: int
    forget_at: float
    sub: Subscription | None = None


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
