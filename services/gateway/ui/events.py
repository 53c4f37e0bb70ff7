"""Server-sent events: NATS run and step events relayed to browsers.

One stream per run (`/events/run/{id}`) and one for the runs list (`/events/runs`). Each
SSE message carries `id:` = the event's JetStream stream sequence, so a browser that loses
its connection reconnects with `Last-Event-ID` and an ordered consumer resumes right
after that sequence: nothing is missed and nothing repeats. A page passes `?after=` (the
stream's last sequence when the page was rendered) so its first connection starts there.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import ConsumerConfig, DeliverPolicy

from artdag_common import streams, subjects
from artdag_common.errors import InvalidInputError
from artdag_common.ids import check_run_id
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


async def relay(gw: Gateway, filters: list[str], after: int | None, new_only: bool) -> AsyncIterator[str]:
    """Follow `filters` on the events stream from `after` + 1 (or from the start, or only new events)."""
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
    after: Annotated[int | None, Query(ge=0)] = None,
    last_event_id: Annotated[str | None, Header(alias="last-event-id")] = None,
) -> StreamingResponse:
    run_id = check_run_id(run_id)
    start = parse_after(last_event_id, after)
    filters = [subjects.run_events(run_id), subjects.step_events(run_id)]
    return _response(relay(gw, filters, start, new_only=False))


@router.get("/events/runs", summary="Every run's events as server-sent events (resumable)")
async def runs_events(
    gw: GatewayDep,
    after: Annotated[int | None, Query(ge=0)] = None,
    last_event_id: Annotated[str | None, Header(alias="last-event-id")] = None,
) -> StreamingResponse:
    start = parse_after(last_event_id, after)
    filters = [subjects.RUN_EVENTS_WILDCARD, subjects.STEP_EVENTS_WILDCARD]
    return _response(relay(gw, filters, start, new_only=True))
