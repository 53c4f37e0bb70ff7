"""No ghost runs: a run left half-accepted or never started is settled by the planner that holds the
recovery lease, while the stack runs (not only when a planner starts)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from nats.js.errors import KeyNotFoundError

from artdag_common import streams
from artdag_common.bus import connect
from artdag_common.bus_access import BusLogin
from artdag_common.codec import pack, unpack
from artdag_common.ids import new_run_id
from artdag_common.schemas import RunState, RunStatus, StepStatus
from tests.e2e.conftest import running_stack

pytestmark = pytest.mark.e2e

RECIPE = "steps:\n  - {id: a, type: NOOP, inputs: [], config: {n: 4242}}\noutput: a\n"


async def _rewrite(nats_url: str, login: BusLogin, run_id: str, state: RunState | None) -> None:
    """Put `state` under `run_id` in the runs bucket (None: read nothing, write nothing)."""
    nc = await connect(nats_url, "pytest-ghosts", login=login)
    try:
        runs = await nc.jetstream().key_value(streams.KV_RUNS.bucket)
        if state is not None:
            await runs.put(run_id, pack(state.model_dump_json().encode()))
    finally:
        await nc.close()


async def _in_bucket(nats_url: str, login: BusLogin, run_id: str) -> RunState | None:
    nc = await connect(nats_url, "pytest-ghosts", login=login)
    try:
        runs = await nc.jetstream().key_value(streams.KV_RUNS.bucket)
        try:
            entry = await runs.get(run_id)
        except KeyNotFoundError:
            return None
        return RunState.model_validate_json(unpack(entry.value or b"{}"))
    finally:
        await nc.close()


def test_half_accepted_and_never_started_runs_are_settled_while_the_stack_runs(tmp_path: Path) -> None:
    with running_stack(tmp_path / "home", ARTDAG_RECOVER_EVERY_S="1") as st, st.http() as http:
        # A run that was accepted and recorded, but whose planner died before starting it: its
        # state says pending, as the submit left it.
        run_id = http.post("/runs", json={"recipe": RECIPE}).json()["run_id"]
        deadline = time.monotonic() + 30
        while (run := http.get(f"/runs/{run_id}").json())["status"] != "completed":
            assert time.monotonic() < deadline, run
            time.sleep(0.1)
        stalled = RunState.model_validate(run).model_copy(
            update={"status": RunStatus.PENDING, "created_at": time.time() - 60, "output_cid": None}
        )
        for step in stalled.steps.values():
            if step.node_type != "SOURCE":
                step.status, step.output_cid = StepStatus.PENDING, None
        asyncio.run(_rewrite(st.nats_url, st.bus_admin, run_id, stalled))

        # A submit that stopped between taking the run id and recording the run: no record anywhere.
        half = RunState(run_id=new_run_id(), recipe_id=run["recipe_id"], recipe_name="half", inputs={})
        half.created_at = time.time() - 60
        asyncio.run(_rewrite(st.nats_url, st.bus_admin, half.run_id, half))

        deadline = time.monotonic() + 30
        while True:
            again = asyncio.run(_in_bucket(st.nats_url, st.bus_admin, run_id))
            dropped = asyncio.run(_in_bucket(st.nats_url, st.bus_admin, half.run_id)) is None
            if again is not None and again.status == RunStatus.COMPLETED and dropped:
                break
            assert time.monotonic() < deadline, (again, dropped)
            time.sleep(0.3)
        assert again.output_cid == run["output_cid"]
        assert http.get(f"/runs/{half.run_id}").status_code == 404
        log = st.log.read_text()
        assert f"run {run_id} was never started; starting it" in log
        assert f"run {half.run_id} has no record (its submit did not finish); dropping it" in log
