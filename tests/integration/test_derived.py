"""The planner's derived media: a run per (kind, cid), started once, waited for through its events."""

from __future__ import annotations

import asyncio

import pytest
from nats.aio.client import Client as NatsClient

from artdag_common import subjects
from artdag_common.cid import cid_of_bytes
from artdag_common.errors import InvalidCidError, NotFoundError, RetryableError
from artdag_common.schemas import (
    DeriveRequest,
    RunEvent,
    RunRequest,
    RunState,
    RunStatus,
    SubmitRunReply,
    SubmitRunRequest,
)
from services.planner.derived import RECIPES, DerivedMedia, derived_run_id

CID = cid_of_bytes(b"a video")


class FakeRuns:
    """The planner's runs as `derive` sees them: submits take a run id once."""

    def __init__(self) -> None:
        self.states: dict[str, RunState] = {}
        self.submits: list[SubmitRunRequest] = []
        self.reads = 0

    async def get_run(self, request: RunRequest) -> RunState:
        self.reads += 1
        if request.run_id not in self.states:
            raise NotFoundError(f"no run {request.run_id}", field="run_id")
        return self.states[request.run_id]

    async def submit(self, request: SubmitRunRequest) -> SubmitRunReply:
        assert request.run_id is not None
        self.submits.append(request)
        if request.run_id in self.states:
            raise RetryableError("being accepted", field="run_id")
        self.states[request.run_id] = RunState(
            run_id=request.run_id, status=RunStatus.PENDING, recipe_id="r", recipe_name="thumbnail", inputs={}
        )
        return SubmitRunReply(run_id=request.run_id, status=RunStatus.PENDING)


async def test_nothing_is_made_unless_asked_to_make_it(nc: NatsClient) -> None:
    runs = FakeRuns()
    derived = DerivedMedia(nc, runs.get_run, runs.submit)
    reply = await derived.derive(DeriveRequest(cid=CID, kind="thumbnail"))
    assert (reply.run_id, reply.status, reply.output_cid) == (derived_run_id("thumbnail", CID), None, None)
    assert runs.submits == []


async def test_a_made_file_is_waited_for_through_the_runs_events(nc: NatsClient) -> None:
    runs = FakeRuns()
    derived = DerivedMedia(nc, runs.get_run, runs.submit)
    run_id = derived_run_id("mp4", CID)
    made = cid_of_bytes(b"the mp4")

    async def finish_later() -> None:
        await asyncio.sleep(0.3)
        runs.states[run_id] = runs.states[run_id].model_copy(update={"status": RunStatus.COMPLETED, "output_cid": made})
        event = RunEvent(run_id=run_id, status=RunStatus.COMPLETED, output_cid=made)
        await nc.publish(subjects.run_event(run_id, "completed"), event.model_dump_json().encode())

    finisher = asyncio.create_task(finish_later())
    started = asyncio.get_running_loop().time()
    reply = await derived.derive(DeriveRequest(cid=CID, kind="mp4", make=True, wait_s=10))
    await finisher
    assert (reply.status, reply.output_cid) == (RunStatus.COMPLETED, made)
    assert asyncio.get_running_loop().time() - started < 1.0, "the event ended the wait, not a poll"
    assert [s.recipe for s in runs.submits] == [RECIPES["mp4"]] and runs.submits[0].owner is None
    assert runs.submits[0].inputs == {"video": CID}


async def test_concurrent_requests_start_one_run_and_a_wait_ends_in_time(nc: NatsClient) -> None:
    runs = FakeRuns()
    derived = DerivedMedia(nc, runs.get_run, runs.submit)
    request = DeriveRequest(cid=CID, kind="thumbnail", make=True, wait_s=0.5)
    replies = await asyncio.gather(*(derived.derive(request) for _ in range(6)))
    assert {r.status for r in replies} == {RunStatus.PENDING}, "not made within the wait: still being made"
    assert len(runs.states) == 1
    # A failed run says why.
    run_id = derived_run_id("thumbnail", CID)
    runs.states[run_id] = runs.states[run_id].model_copy(update={"status": RunStatus.FAILED, "error": "no frames"})
    failed = await derived.derive(request)
    assert (failed.status, failed.error) == (RunStatus.FAILED, "no frames")


async def test_a_malformed_cid_is_refused(nc: NatsClient) -> None:
    runs = FakeRuns()
    derived = DerivedMedia(nc, runs.get_run, runs.submit)
    with pytest.raises(InvalidCidError):
        await derived.derive(DeriveRequest(cid="../etc/passwd", kind="thumbnail", make=True))
    assert runs.submits == []
