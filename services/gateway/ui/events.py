"""Server-sent events: NATS run and step events relayed to browsers.

One stream per run (`/events/run/{id}`) and one for the runs list (`/events/runs`). Each
SSE message carries `id:` = the event's JetStream stream sequence, so a browser that loses
its connection reconnects with `Last-Event-ID` and an ordered consumer resumes right
after that sequence: nothing is missed and nothing repeats. A page passes `?after=` (the
stream's last sequence when the page was rendered) so its first connection starts there.

Both need a user. The per-run stream is only for a run the user may see (another user's is "not
found"); the runs-list stream passes on only the events of runs the user may see (admins: all),
asking the planner once per run whose run it is. Events it holds back still advance nothing the
browser resumes from, so Last-Event-ID keeps working.

A stream lasts only as long as its token: every ARTDAG_SSE_RECHECK_S (and before each event) it
checks the token against the revocation list the gateway follows and its expiry, and ends with an
`end` event once it is revoked or expired. A user holds at most ARTDAG_SSE_PER_USER open streams on
a gateway; one more is a 429.
"""

from __future__ import annotations

import json
import logging
import time
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import ConsumerConfig, DeliverPolicy

from artdag_common import streams, subjects
from artdag_common.contracts import Planner
from artdag_common.errors import ArtdagError, InvalidInputError, NotFoundError
from artdag_common.schemas import Principal, RunRequest, RunState, Viewer
from services.gateway import errors
from services.gateway.auth import CurrentUser
from services.gateway.deps import Gateway, GatewayDep
from services.gateway.policy import owned_run

log = logging.getLogger(__name__)
router = APIRouter(tags=["ui"])

KEEPALIVE_S = 15.0
# JetStream sequences are unsigned 64-bit; a resume point past this is no sequence at all.
MAX_SEQUENCE = 2**63 - 1
STREAM = streams.EVENTS.name or "ARTDAG_EVENTS"


async def last_sequence(gw: Gateway) -> int:
    """The event stream's last sequence now: a page rendered after this sees every later event live."""
    info = await gw.runtime.js.stream_info(STREAM)
    return int(info.state.last_seq)


def parse_after(last_event_id: str | None, after: int | None) -> int | None:
    """Where to resume: the browser's Last-Event-ID wins over the page's `after`."""
    if last_event_id:
        if not last_event_id.isdigit() or len(last_event_id) > 20 or int(last_event_id) > MAX_SEQUENCE:
            raise InvalidInputError("Last-Event-ID must be a stream sequence number", field="Last-Event-ID")
        return int(last_event_id)
    return after


def sse_message(seq: int, subject: str, data: bytes) -> str:
    """One SSE message: `step` or `run` (from the subject), id = stream sequence, data = the event's JSON."""
    kind = "step" if subject.startswith(f"{subjects.PREFIX}.event.step.") else "run"
    try:
        body: Any = json.loads(data)
    except ValueError:
        body = {}
    payload = json.dumps(body, separators=(",", ":"))
    return f"id: {seq}\nevent: {kind}\ndata: {payload}\n\n"


def run_of(subject: str) -> str | None:
    """The run an event subject is about: `<prefix>.event.run.<run>.<status>` / `….event.step.<run>.<step>`."""
    for head in (f"{subjects.PREFIX}.event.run.", f"{subjects.PREFIX}.event.step."):
        if subject.startswith(head):
            return subject[len(head) :].split(".", 1)[0] or None
    return None


class RunFilter:
    """Which runs' events a viewer may follow: admins all, others their own (asked once per run)."""

    def __init__(self, gw: Gateway, viewer: Viewer) -> None:
        self.gw = gw
        self.viewer = viewer
        self._seen: dict[str, bool] = {}

    async def allows(self, subject: str) -> bool:
        if self.viewer.admin:
            return True
        run_id = run_of(subject)
        if run_id is None:
            return False
        known = self._seen.get(run_id)
        if known is not None:
            return known
        try:
            state: RunState = await self.gw.call(Planner.get_run, RunRequest(run_id=run_id))
        except NotFoundError:
            return False  # deleted (or not there yet): held back, and asked again at its next event
        # Anything else (the planner not answering) ends the stream (see `relay`).
        allowed = self.viewer.may_see(state.owner)
        if len(self._seen) > 10_000:
            self._seen.clear()
        self._seen[run_id] = allowed
        return allowed


def end_message(reason: str) -> str:
    """The last SSE message of a stream its token no longer allows: `end`, with the reason."""
    return f"event: end\ndata: {json.dumps({'reason': reason})}\n\n"


async def relay(
    gw: Gateway,
    filters: list[str],
    after: int | None,
    new_only: bool,
    allows: Callable[[str], Awaitable[bool]] | None = None,
    refusal: Callable[[], str | None] | None = None,
    recheck_s: float = KEEPALIVE_S,
    on_close: Callable[[], None] | None = None,
) -> AsyncGenerator[str, None]:
    """Follow `filters` on the events stream from `after` + 1 (or from the start, or only new events);
    `allows(subject)` (awaited) holds back events the viewer may not see; `refusal()` (asked every
    `recheck_s` and before each event) ends the stream once it names a reason; `on_close()` runs
    when it ends, however it ends."""
    if after is not None:
        config = ConsumerConfig(
            filter_subjects=filters, deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=after + 1
        )
    else:
        config = ConsumerConfig(
            filter_subjects=filters, deliver_policy=DeliverPolicy.NEW if new_only else DeliverPolicy.ALL
        )
    config.inactive_threshold = 60.0
    sub = await gw.runtime.js.subscribe(filters[0], stream=STREAM, ordered_consumer=True, config=config)
    wait_s = min(KEEPALIVE_S, recheck_s)
    try:
        yield "retry: 1000\n\n"
        quiet_since = time.monotonic()
        while True:
            reason = refusal() if refusal is not None else None
            if reason is not None:
                yield end_message(reason)
                return
            try:
                msg = await sub.next_msg(timeout=wait_s)
            except (TimeoutError, NatsTimeoutError):
                if time.monotonic() - quiet_since >= KEEPALIVE_S:
                    quiet_since = time.monotonic()
                    yield ": keep-alive\n\n"
                continue
            try:
                if allows is not None and not await allows(msg.subject):
                    continue
            except ArtdagError as exc:
                # Whose run it is cannot be asked now (the planner away): close the stream cleanly;
                # the browser resumes after the last event it got.
                log.info("event stream closed: %s", exc)
                return
            reason = refusal() if refusal is not None else None
            if reason is not None:  # nothing more goes out under a token revoked meanwhile
                yield end_message(reason)
                return
            quiet_since = time.monotonic()
            yield sse_message(msg.metadata.sequence.stream, msg.subject, msg.data)
    finally:
        if on_close is not None:
            on_close()
        try:
            await sub.unsubscribe()
        except Exception as exc:  # noqa: BLE001 - the client is gone; the consumer expires by itself
            log.debug("unsubscribe after SSE: %s", exc)


class EventStreamResponse(StreamingResponse):
    media_type = "text/event-stream"


def _response(gw: Gateway, user: Principal, **follow: Any) -> EventStreamResponse:
    """`relay(**follow)` as a response, holding one of the user's stream slots while it is open."""
    release = gw.event_streams.take(user.user)  # 429 over the cap, before anything is opened
    stream = relay(
        gw, refusal=lambda: gw.auth.refusal(user), recheck_s=gw.settings.sse_recheck_s, on_close=release, **follow
    )
    # A stream never started (its client gone at once) gives its slot back when it is dropped.
    weakref.finalize(stream, release)
    return EventStreamResponse(stream, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-sent events (`run`, `step`; `end` when the token is revoked or expires)",
        "content": {
            "text/event-stream": {
                "schema": {
                    "type": "object",
                    "description": "one event; its data is the event's JSON",
                    "properties": {
                        "event": {"type": "string", "enum": ["run", "step", "end"]},
                        "id": {"type": "string", "pattern": "^[0-9]+$"},
                        "data": {"type": "string", "contentMediaType": "application/json"},
                        "retry": {"type": "integer"},
                    },
                }
            }
        },
    },
    **errors.responses(404, not_json=True),
}


After = Annotated[int | None, Query(ge=0, le=MAX_SEQUENCE, description="the stream sequence to resume after")]
LastEventId = Annotated[str | None, Header(alias="last-event-id", max_length=20)]


@router.get(
    "/events/run/{run_id}",
    summary="A run's events as server-sent events (resumable)",
    response_class=EventStreamResponse,
    responses=STREAM_RESPONSES,
)
async def run_events(
    run_id: str, gw: GatewayDep, user: CurrentUser, after: After = None, last_event_id: LastEventId = None
) -> EventStreamResponse:
    start = parse_after(last_event_id, after)
    run_id = (await owned_run(gw, user, run_id)).run_id  # 404 for another user's run
    filters = [subjects.run_events(run_id), subjects.step_events(run_id)]
    return _response(gw, user, filters=filters, after=start, new_only=False)


@router.get(
    "/events/runs",
    summary="Every run's events as server-sent events (resumable)",
    response_class=EventStreamResponse,
    responses=STREAM_RESPONSES,
)
async def runs_events(
    gw: GatewayDep, user: CurrentUser, after: After = None, last_event_id: LastEventId = None
) -> EventStreamResponse:
    start = parse_after(last_event_id, after)
    filters = [subjects.RUN_EVENTS_WILDCARD, subjects.STEP_EVENTS_WILDCARD]
    allowed = RunFilter(gw, user.viewer())
    return _response(gw, user, filters=filters, after=start, new_only=True, allows=allowed.allows)
