"""Two planner replicas share every run: step events of one run land on both, and their writes
of the run's state race (compare-and-set on its revision, a lost one merges). Over `artdag up`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from artdag_cli.demo_media import write_test_clip
from artdag_dev.testing import noop_tree_recipe
from tests.e2e.conftest import running_stack

pytestmark = pytest.mark.e2e

CHAIN = """
name: chain
inputs: [video]
steps:
  - {id: small, type: RESIZE, inputs: [video], config: {width: 160, height: 120}}
  - {id: negative, type: EFFECT, inputs: [small], config: {effect: invert}}
output: negative
"""


def wait_for(http: httpx.Client, run_id: str, timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while (run := http.get(f"/runs/{run_id}").json())["status"] not in ("completed", "failed", "cancelled"):
        assert time.monotonic() < deadline, {k: v for k, v in run.items() if k != "steps"}
        time.sleep(0.1)
    body: dict[str, Any] = run
    return body


def test_two_planners_drive_runs_together(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    write_test_clip(clip, width=320, height=240, fps=25, duration_s=1.0)
    with running_stack(tmp_path / "home", "--planners", "2", "--executors", "2") as st, st.http() as http:
        planners = [pid for pid in st.descendants() if b"services.planner" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        assert len(planners) == 2
        with clip.open("rb") as handle:
            video = http.post("/cache/upload", files={"file": ("clip.mp4", handle)}).json()["cid"]
        # Three trees and a media chain at once: events of each run reach both planners.
        runs = [
            http.post("/runs", json={"recipe": noop_tree_recipe(64, salt), "inputs": {}}).json() for salt in (1, 2, 3)
        ]
        chain = http.post("/runs", json={"recipe": CHAIN, "inputs": {"video": video}}).json()
        for submitted in [*runs, chain]:
            run = wait_for(http, submitted["run_id"])
            assert run["status"] == "completed", {k: v for k, v in run.items() if k != "steps"}
            # The replica that finished the run may not yet have heard of every step the other saw
            # done: the other folds what it knows into the finished run when it writes (its linger).
            deadline = time.monotonic() + 5
            while not all(step["status"] in ("completed", "cached") for step in run["steps"].values()):
                assert time.monotonic() < deadline, sorted({s["status"] for s in run["steps"].values()})
                time.sleep(0.1)
                run = http.get(f"/runs/{submitted['run_id']}").json()
            assert run["output_cid"] and run["plan_cid"]
            # Whatever replica announced the run, its output is known to the cache by then.
            meta = http.get(f"/cache/{run['output_cid']}/meta")
            assert meta.status_code == 200, meta.text
            # Its provenance record, made by the cache when it heard the run finished, names the
            # plan even when the announcing replica did not store it (the cache waits for it).
            deadline = time.monotonic() + 10
            while not (provenance := http.get(f"/cache/{run['output_cid']}/meta").json()["provenance_cid"]):
                assert time.monotonic() < deadline, "no provenance record"
                time.sleep(0.1)
            record = http.get(f"/cache/{provenance}/raw").json()
            assert (record["run_id"], record["plan_cid"]) == (run["run_id"], run["plan_cid"])
            listed = http.get("/runs", params={"limit": 50}).json()["runs"]
            assert {r["run_id"]: r["status"] for r in listed}[run["run_id"]] == "completed"
        tree = wait_for(http, runs[0]["run_id"])
        assert len(tree["steps"]) == 127
        # Every step's output is registered (no-op outputs by whichever planner took their event).
        outputs = {step["output_cid"] for step in tree["steps"].values()}
        assert all(http.get(f"/cache/{cid}/meta").status_code == 200 for cid in sorted(outputs)[:20])
        # The same tree again: every step found cached at once, by either replica.
        again = wait_for(
            http, http.post("/runs", json={"recipe": noop_tree_recipe(64, 1), "inputs": {}}).json()["run_id"]
        )
        assert again["status"] == "completed"
        assert all(step["status"] == "cached" for step in again["steps"].values())
        assert again["output_cid"] == tree["output_cid"]
