"""No ghost runs: the planner dies in every phase of a submit and of a run's start (crash points,
as a SIGKILL would leave it), clients retry with their Idempotency-Key, and every run reaches an
end, once."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Stack, running_stack

pytestmark = pytest.mark.e2e

# In the order a run meets them: the run id taken in the KV; the run recorded in SQL; its final
# plan made; its start written (the first steps dispatched).
PHASES = ("submit:taken", "submit:recorded", "start:planned", "start:begun")
CLIENTS = 3


def _recipe(k: int) -> str:
    return f"steps:\n  - {{id: a, type: NOOP, inputs: [], config: {{n: {8_100_000 + k}}}}}\noutput: a\n"


def _run_to_the_end(st: Stack, k: int, timeout_s: float = 150.0) -> dict[str, object]:
    """A careful client: the same request under the same key until a run is known, then its end.

    503: try again after Retry-After. A run that turns out never to have been recorded (its
    submit died half way, and the id was given up) is asked for again under the same key.
    """
    deadline = time.monotonic() + timeout_s
    key = {"Idempotency-Key": f"crash-{k}"}
    with st.http(timeout=15) as http:
        run_id: str | None = None
        while True:
            assert time.monotonic() < deadline, f"client {k}: no end in {timeout_s:g} s (run {run_id})"
            if run_id is None:
                try:
                    answer = http.post("/runs", json={"recipe": _recipe(k)}, headers=key)
                except httpx.TransportError:
                    time.sleep(0.2)
                    continue
                if answer.status_code == 503:
                    time.sleep(float(answer.headers["Retry-After"]))
                    continue
                assert answer.status_code == 202, answer.text
                run_id = str(answer.json()["run_id"])
            try:
                seen = http.get(f"/runs/{run_id}")
            except httpx.TransportError:
                time.sleep(0.2)
                continue
            if seen.status_code == 404:
                run_id = None  # never accepted after all: the same request again
                continue
            if seen.status_code == 200 and seen.json()["status"] in ("completed", "failed", "cancelled"):
                run: dict[str, object] = seen.json()
                return run
            time.sleep(0.3)


# Four planner restarts, and a step event the dead planner held comes back after its ack wait.
@pytest.mark.timeout(240)
def test_a_planner_killed_in_every_phase_of_a_submit_leaves_no_ghost_run(tmp_path: Path) -> None:
    home = tmp_path / "home"
    # A short ack wait: a step event the dead planner held comes back in seconds.
    with running_stack(
        home,
        ARTDAG_CRASH_POINTS=",".join(PHASES),
        ARTDAG_RECOVER_EVERY_S="2",
        ARTDAG_ACK_WAIT_S="4",
        ARTDAG_HEARTBEAT_S="1",
    ) as st:
        with ThreadPoolExecutor(CLIENTS) as pool:
            runs = list(pool.map(lambda k: _run_to_the_end(st, k), range(CLIENTS)))
        log = st.log.read_text()
        with st.http() as http:
            listed = [r["run_id"] for r in http.get("/runs", params={"limit": 100}).json()["runs"]]
            # Asked again under their keys, the clients get the same runs.
            again = [
                http.post("/runs", json={"recipe": _recipe(k)}, headers={"Idempotency-Key": f"crash-{k}"}).json()
                for k in range(CLIENTS)
            ]

    crashed = sorted(path.name for path in home.glob("crashed-at-*"))
    assert crashed == sorted(f"crashed-at-{phase.replace(':', '-')}" for phase in PHASES), crashed
    assert log.count("service planner exited with code 137") == len(PHASES), log[-3000:]
    assert [run["status"] for run in runs] == ["completed"] * CLIENTS, [(r["status"], r.get("error")) for r in runs]
    run_ids = [str(run["run_id"]) for run in runs]
    assert len(set(run_ids)) == CLIENTS
    assert sorted(listed) == sorted(run_ids), "one run per client: no duplicate, no ghost"
    assert [a["run_id"] for a in again] == run_ids
