"""Media derived from a video on request: a browser-playable MP4, a thumbnail.

A derived file is a one-step run of a recipe kept here: planned, rendered and cached like
any other. Its run id is fixed by what it makes of which cid, so it is made once: every
request for it finds the same run (concurrent ones too: a run id is taken once). The
request that may make it (`make`, a signed-in user's) starts the run; any request waits
for it up to `wait_s`, following the run's events rather than asking again and again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from artdag_common import subjects
from artdag_common.cid import validate_cid
from artdag_common.errors import NotFoundError, RetryableError
from artdag_common.ids import sha3_hex
from artdag_common.schemas import (
    DerivedKind,
    DerivedReply,
    DeriveRequest,
    RunRequest,
    RunState,
    SubmitRunReply,
    SubmitRunRequest,
)

RECIPES: dict[DerivedKind, str] = {
    "mp4": """
name: browser-mp4
inputs: [video]
steps:
  - {id: mp4, type: TRANSFORM, inputs: [video]}
output: mp4
""",
    "thumbnail": """
name: thumbnail
inputs: [video]
steps:
  - {id: still, type: THUMBNAIL, inputs: [video], config: {width: 320, at_s: 1.0}}
output: still
""",
}


def derived_run_id(kind: DerivedKind, cid: str) -> str:
    """The one run that makes `kind` of `cid`."""
    return "run-" + sha3_hex(["derived", kind, cid])[:32]


def _reply(run_id: str, state: RunState | None) -> DerivedReply:
    if state is None:
        return DerivedReply(run_id=run_id)
    return DerivedReply(run_id=run_id, status=state.status, output_cid=state.output_cid, error=state.error)


class DerivedMedia:
    """Answers `planner.derive`: finds, starts and waits for the run that makes a derived file."""

    def __init__(
        self,
        nc: NatsClient,
        get_run: Callable[[RunRequest], Awaitable[RunState]],
        submit: Callable[[SubmitRunRequest], Awaitable[SubmitRunReply]],
    ) -> None:
        self.nc = nc
        self.get_run = get_run
        self.submit = submit

    async def _state(self, run_id: str) -> RunState | None:
        try:
            return await self.get_run(RunRequest(run_id=run_id))
        except NotFoundError:
            return None

    async def derive(self, request: DeriveRequest) -> DerivedReply:
        cid = validate_cid(request.cid)
        run_id = derived_run_id(request.kind, cid)
        changed = asyncio.Event()

        async def on_event(_msg: Msg) -> None:
            changed.set()

        # Listening before looking: a change between the look and the wait is not missed.
        events = await self.nc.subscribe(subjects.run_events(run_id), cb=on_event) if request.wait_s > 0 else None
        try:
            deadline = asyncio.get_running_loop().time() + request.wait_s
            state = await self._state(run_id)
            if state is None and request.make:
                # The system's run (no owner): the same for every user who may see the source. A
                # RetryableError: another request is starting this very run; it is waited for.
                starting = SubmitRunRequest(recipe=RECIPES[request.kind], inputs={"video": cid}, run_id=run_id)
                with contextlib.suppress(RetryableError):
                    await self.submit(starting)
                state = await self._state(run_id)
            while events is not None and (state is None or not state.status.finished):
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    break
                changed.clear()
                with contextlib.suppress(TimeoutError):
                    # A missed event costs at most a second: the state is read again anyway.
                    await asyncio.wait_for(changed.wait(), min(left, 1.0))
                state = await self._state(run_id)
            return _reply(run_id, state)
        finally:
            if events is not None:
                await events.unsubscribe()
