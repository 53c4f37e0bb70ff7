"""How the gateway answers when the bus is away: a retryable 503 with Retry-After, never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import nats.errors
import nats.js.errors
import pytest
from fastapi import FastAPI

from artdag_common.errors import ServiceUnavailableError
from services.gateway import errors


@pytest.mark.parametrize(
    "raised",
    [
        nats.errors.NoRespondersError(),
        nats.errors.TimeoutError(),
        nats.errors.ConnectionClosedError(),
        nats.js.errors.ServiceUnavailableError(),
        ServiceUnavailableError("planner did not answer submit within 5 s"),
    ],
)
async def test_a_bus_outage_is_a_503_to_retry(raised: Exception) -> None:
    app = FastAPI()
    errors.install(app)

    @app.get("/runs")
    async def runs() -> None:
        raise raised

    @app.get("/bug")
    async def bug() -> None:
        raise ValueError("a plain bug")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        answer = await client.get("/runs")
        assert answer.status_code == 503
        assert answer.headers["Retry-After"] == str(errors.RETRY_AFTER_S)
        assert answer.json()["error"]["code"] == "unavailable"
        assert (await client.get("/bug")).status_code == 500, "a bug is not an outage"


async def test_a_submit_the_planner_took_but_answered_late_is_accepted_with_its_run_id() -> None:
    from artdag_common.contracts import Planner, Verb
    from artdag_common.errors import NoAnswerInTimeError, NotFoundError
    from artdag_common.schemas import RunRequest, RunState, RunStatus, SubmitRunRequest
    from services.gateway.submitting import start_run

    class LatePlanner:
        """Answers the submit too late; the run is there when asked for."""

        def __init__(self, took_it: bool) -> None:
            self.took_it = took_it

        def ensure_room(self, what: str) -> None:
            pass  # room enough on the disk

        async def call(self, verb: Verb[Any, Any], request: object) -> object:
            if verb is Planner.submit:
                raise NoAnswerInTimeError("planner did not answer submit within 5 s")
            assert verb is Planner.get_run
            if not self.took_it:
                raise NotFoundError("no run", field="run_id")
            assert isinstance(request, RunRequest)
            return RunState(run_id=request.run_id, status=RunStatus.PENDING, recipe_id="r", recipe_name="r", inputs={})

    request = SubmitRunRequest(recipe="steps: []", run_id="run-" + "a" * 32)
    reply = await start_run(LatePlanner(took_it=True), Planner.submit, request)  # type: ignore[arg-type]
    assert (reply.run_id, reply.status) == (request.run_id, RunStatus.PENDING)
    # A planner that never got to it (it drops what its caller gave up on): no promise, a 503.
    with pytest.raises(ServiceUnavailableError, match="send it again"):
        await start_run(LatePlanner(took_it=False), Planner.submit, request)  # type: ignore[arg-type]

    class NoPlanner:
        def ensure_room(self, what: str) -> None:
            pass

        async def call(self, *_args: object) -> object:
            raise ServiceUnavailableError("no planner service is running")

    with pytest.raises(ServiceUnavailableError):  # nobody took it: a 503 to retry, not a promise
        await start_run(NoPlanner(), Planner.submit, request)  # type: ignore[arg-type]
