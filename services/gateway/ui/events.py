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
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import ConsumerConfig, DeliverPolicy

from artdag_common import streams, subjects
from artdag_common.errors import InvalidInputError, NotFoundError
from artdag_common.schemas import RunRequest, RunState, Viewer
from services.gateway.api import owned_run
from services.gateway.auth import CurrentUser
from services.gateway.deps import Gateway, GatewayDep

log = logging.getLogger(__name__)
router = APIRouter(tags=["ui"])

KEEPALIVE_S = 15.0
STREAM = streams.EVENTS.name or "ARTDAG_EVENTS"


async def last_sequence(gw: Gateway) -> int:
    """The event stream's last sequence now: a page rendered after this sees every later event live."""
    info = await gw.runtime.js.stream_info(STREAM)
    return int(info.state.last_seq)


def parse_after(last_event_id: str | None, after: int | None) -> int | None:
    """Where to resume: the browser's Last-Event-ID wins over the page's `after`."""
    if last_event_id:
        if not last_event_id.isdigit() or len(last_event_id) > 20:
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
            state: RunState = await self.gw.call("planner", "get_run", RunRequest(run_id=run_id), RunState)
        except NotFoundError:
            return False  # deleted (or not there yet): held back, and asked again at its next event
        # Anything else (the planner not answering) ends the stream: the browser resumes after the last event sent.
        allowed = self.viewer.may_see(state.owner)
        if len(self._seen) > 10_000:
            self._seen.clear()
        self._seen[run_id] = allowed
        return allowed


async def relay(
    gw: Gateway,
    filters: list[str],
    after: int | None,
    new_only: bool,
    allows: Callable[[str], Awaitable[bool]] | None = None,
) -> AsyncGenerator[str, None]:
    """Follow `filters` on the events stream from `after` + 1 (or from the start, or only new events);
    `allows(subject)` (awaited) holds back events the viewer may not see."""
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
    try:
        yield "retry: 1000\n\n"
        while True:
            try:
                msg = await sub.next_msg(timeout=KEEPALIVE_S)
            except (TimeoutError, NatsTimeoutError):
                yield ": keep-alive\n\n"
                continue
            if allows is not None and not await allows(msg.subject):
                continue
            yield sse_message(msg.metadata.sequence.stream, msg.subject, msg.data)
    finally:
        try:
            await sub.unsubscribe()
        except Exception as exc:  # noqa: BLE001 - the client is gone; the consumer expires by itself
            log.debug("unsubscribe after SSE: %s", exc)


def _response(body: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/events/run/{run_id}", summary="A run's events as server-sent events (resumable)")
async def run_events(
    run_id: str,
    gw: GatewayDep,
    user: CurrentUser,
    after: Annotated[int | None, Query(ge=0)] = None,
    last_event_id: Annotated[str | None, Header(alias="last-event-id")] = None,
) -> StreamingResponse:
    start = parse_after(last_event_id, after)
    run_id = (await owned_run(gw, user, run_id)).run_id  # 404 for another user's run
    filters = [subjects.run_events(run_id), subjects.step_events(run_id)]
    return _response(relay(gw, filters, start, new_only=False))


@router.get("/events/runs", summary="Every run's events as server-sent events (resumable)")
async def runs_events(
    gw: GatewayDep,
    user: CurrentUser,
    after: Annotated[int | None, Query(ge=0)] = None,
    last_event_id: Annotated[str | None, Header(alias="last-event-id")] = None,
) -> StreamingResponse:
    start = parse_after(last_event_id, after)
    filters = [subjects.RUN_EVENTS_WILDCARD, subjects.STEP_EVENTS_WILDCARD]
    allowed = RunFilter(gw, user.viewer())
    return _response(relay(gw, filters, start, new_only=True, allows=allowed.allows))
