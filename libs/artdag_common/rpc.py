"""Typed request/reply over core NATS: `artdag.rpc.<service>.<verb>`, queue groups.

A handler takes a pydantic request and returns a pydantic reply; errors travel as
`{code, message, field}` and are raised again on the caller's side as the same
`ArtdagError` subclass, so an `InvalidInputError` in the planner reaches the HTTP
client as a 422 naming the field. Error messages leave a service without the
absolute paths of its files (`public_message`).

A reply larger than the connection's max payload (a plan of thousands of steps) is
never dropped: it goes into the `artdag_rpc_replies` object store and the reply
message only names it (header `Artdag-Reply-Object`); `call` reads it from there,
deletes it and answers as if it had come in the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from opentelemetry import context as otel_context
from pydantic import BaseModel, ValidationError

from artdag_common import streams
from artdag_common.bus import TRANSIENT
from artdag_common.codec import pack, unpack_or_raw
from artdag_common.contracts import Verb
from artdag_common.errors import (
    ArtdagError,
    NoAnswerInTimeError,
    ServiceUnavailableError,
    error_from_code,
    invalid_input,
    public_message,
)
from artdag_common.schemas import RpcErrorBody, RpcReply
from artdag_common.telemetry import extract_context, inject_headers, tracer

log = logging.getLogger(__name__)

Req = TypeVar("Req", bound=BaseModel)
Rep = TypeVar("Rep", bound=BaseModel)

_tracer = tracer(__name__)


# When the caller stops waiting for the answer (seconds since the epoch); a replica that gets to
# the request later than that (and a margin for clocks) drops it unanswered.
DEADLINE_HEADER = "Artdag-Deadline"
DEADLINE_GRACE_S = 0.5


# A reply message that carries no reply but the name of the object in OBJ_RPC_REPLIES that holds it.
REPLY_OBJECT_HEADER = "Artdag-Reply-Object"
# Room left in a message for the headers a reply carries (the request's, echoed back).
HEADER_ROOM = 8 * 1024


async def _respond(nc: NatsClient, msg: Msg, data: bytes) -> None:
    """Answer `msg` with `data`: in the message when it fits, else through the replies object store."""
    if len(data) + HEADER_ROOM <= nc.max_payload:
        await msg.respond(data)
        return
    name = uuid.uuid4().hex
    try:
        replies = await nc.jetstream().object_store(streams.OBJ_RPC_REPLIES.bucket or "")
        await replies.put(name, data)
    except Exception:
        log.exception("rpc %s: could not store a reply of %d bytes", msg.subject, len(data))
        failed = RpcReply(
            ok=False,
            error=RpcErrorBody(code=ServiceUnavailableError.code, message="the answer could not be sent; try again"),
        )
        await msg.respond(failed.model_dump_json().encode())
        return
    await nc.publish(msg.reply, b"", headers={REPLY_OBJECT_HEADER: name})


async def _reply_data(nc: NatsClient, msg: Msg) -> bytes:
    """A reply's bytes: the message's own, or the stored object it names (read once, then deleted)."""
    name = (msg.headers or {}).get(REPLY_OBJECT_HEADER)
    if name is None:
        return bytes(msg.data)
    replies = await nc.jetstream().object_store(streams.OBJ_RPC_REPLIES.bucket or "")
    found = await replies.get(name)
    with contextlib.suppress(Exception):  # unread ones expire with the bucket's TTL anyway
        await replies.delete(name)
    return bytes(found.data or b"")


def _late_by(msg: Msg) -> float:
    """How long ago the caller of `msg` gave up (0 if it has not, or set no deadline)."""
    try:
        deadline = float((msg.headers or {})[DEADLINE_HEADER])
    except (KeyError, ValueError):
        return 0.0
    return max(0.0, time.time() - deadline)


async def serve(
    nc: NatsClient,
    verb: Verb[Req, Rep],
    handler: Callable[[Req], Awaitable[Rep]],
    *,
    concurrency: int = 1,
) -> Subscription:
    """Answer `verb` in its service's queue group, `concurrency` requests at a time."""
    service, name, subject = verb.service, verb.name, verb.subject

    async def on_message(msg: Msg) -> None:
        late_s = _late_by(msg)
        if late_s > DEADLINE_GRACE_S:
            # Its caller stopped waiting (it waited in this replica's queue): doing it now would be
            # work nobody reads, or a change the caller was told did not happen.
            log.info("rpc %s.%s: dropped a request its caller gave up on %.1f s ago", service, name, late_s)
            return
        token = otel_context.attach(extract_context(msg.headers))
        try:
            with _tracer.start_as_current_span(f"rpc {service}.{name}"):
                try:
                    request = verb.request.model_validate_json(unpack_or_raw(msg.data))
                    result = await handler(request)
                    reply = RpcReply(ok=True, data=result.model_dump(mode="json"))
                except ValidationError as exc:
                    invalid = invalid_input(exc)
                    reply = RpcReply(
                        ok=False, error=RpcErrorBody(code=invalid.code, message=invalid.message, field=invalid.field)
                    )
                except ArtdagError as exc:
                    message = public_message(exc.message)
                    reply = RpcReply(ok=False, error=RpcErrorBody(code=exc.code, message=message, field=exc.field))
                except TRANSIENT as exc:
                    # The bus is out under this handler (a leader being elected, a server restarting):
                    # the caller may try again, it is not a bug.
                    log.warning("rpc %s.%s: the bus is unavailable (%s)", service, name, type(exc).__name__)
                    message = f"{service} could not reach the bus ({type(exc).__name__}); try again"
                    reply = RpcReply(ok=False, error=RpcErrorBody(code=ServiceUnavailableError.code, message=message))
                except Exception:
                    log.exception("rpc %s.%s failed", service, name)
                    reply = RpcReply(ok=False, error=RpcErrorBody(code="internal", message="internal error"))
                if msg.reply:
                    await _respond(nc, msg, pack(reply.model_dump_json().encode()))
        finally:
            otel_context.detach(token)

    if concurrency <= 1:
        return await nc.subscribe(subject, queue=verb.queue, cb=on_message)
    # A subscription's callback runs one message at a time: run up to `concurrency` requests at once.
    slots = asyncio.Semaphore(concurrency)
    running: set[asyncio.Task[None]] = set()

    async def answer(msg: Msg) -> None:
        try:
            await on_message(msg)
        finally:
            slots.release()

    async def dispatch(msg: Msg) -> None:
        await slots.acquire()
        task = asyncio.create_task(answer(msg))
        running.add(task)
        task.add_done_callback(running.discard)

    return await nc.subscribe(subject, queue=verb.queue, cb=dispatch)


async def call(nc: NatsClient, verb: Verb[Req, Rep], request: Req, *, timeout_s: float) -> Rep:
    """Ask one replica of `verb.service`, waiting `timeout_s`; raises the typed error it answered with."""
    service, name = verb.service, verb.name
    headers = inject_headers({DEADLINE_HEADER: f"{time.time() + timeout_s:.3f}"})
    try:
        msg = await nc.request(
            verb.subject, pack(request.model_dump_json().encode()), timeout=timeout_s, headers=headers
        )
    except NoRespondersError as exc:
        raise ServiceUnavailableError(f"no {service} service is running") from exc
    except NatsTimeoutError as exc:
        raise NoAnswerInTimeError(f"{service} did not answer {name} within {timeout_s:g} s") from exc
    try:
        data = await asyncio.wait_for(_reply_data(nc, msg), timeout_s)
    except Exception as exc:  # expired, a bus outage, too slow: the caller may ask again
        log.warning("rpc %s.%s: could not read the stored answer: %s", service, name, type(exc).__name__)
        raise ServiceUnavailableError(f"the answer of {service} to {name} could not be read; try again") from exc
    reply = RpcReply.model_validate_json(unpack_or_raw(data))
    if not reply.ok:
        err = reply.error or RpcErrorBody(code="internal", message="error without detail")
        raise error_from_code(err.code, err.message, err.field)
    return verb.reply.model_validate(reply.data or {})


class Client:
    """Asks verbs over one connection, each waiting the verb's time (`Verb.timeout_s`) unless told otherwise."""

    def __init__(self, nc: NatsClient, standard_timeout_s: float) -> None:
        self.nc = nc
        self.standard_timeout_s = standard_timeout_s

    async def call(self, verb: Verb[Req, Rep], request: Req, *, timeout_s: float | None = None) -> Rep:
        """`verb`'s reply to `request`; `timeout_s` replaces the verb's wait for this one call."""
        wait_s = verb.timeout_s(self.standard_timeout_s) if timeout_s is None else timeout_s
        return await call(self.nc, verb, request, timeout_s=wait_s)
