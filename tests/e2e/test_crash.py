"""An executor killed with SIGKILL mid-step: the lease lapses, JetStream redelivers, the run completes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

import httpx
import pytest
from nats.js.errors import KeyNotFoundError

from artdag_cli.demo_media import write_test_clip
from artdag_common import streams
from artdag_common.bus import connect
from artdag_common.bus_access import BusLogin
from artdag_common.cid import cid_of_bytes, cid_of_file
from artdag_common.content_store import LocalContentStore
from services.executor.primitives.resize import render_resize
from tests.e2e.conftest import Stack, alive, descendants, running_stack

pytestmark = pytest.mark.e2e

RECIPE = """
name: upscale
inputs: [video]
steps:
  - {id: big, type: RESIZE, inputs: [video], config: {width: 1280, height: 720, mode: stretch}}
output: big
"""


async def _claim_holder(nats_url: str, login: BusLogin, step_id: str, timeout_s: float) -> str:
    nc = await connect(nats_url, "pytest-crash", login=login)
    try:
        claims = await nc.jetstream().key_value(streams.KV_CLAIMS.bucket)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                entry = await claims.get(step_id)
                worker: str = json.loads(entry.value or b"{}")["worker"]
                return worker
            except KeyNotFoundError:
                await asyncio.sleep(0.05)
        raise AssertionError("no executor claimed the step")
    finally:
        await nc.close()


def test_a_killed_executor_loses_its_step_to_another(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    # Long enough that the kill lands mid-render (a few seconds of 720p), short enough to render twice.
    write_test_clip(clip, width=320, height=240, fps=25, duration_s=10.0)
    clean = tmp_path / "clean.mp4"
    render_resize(clip, clean, width=1280, height=720, mode="stretch")

    # A short ack wait: the dead executor's step goes to the other one in seconds, not JetStream's 30.
    with running_stack(
        tmp_path / "home",
        "--executors",
        "2",
        ARTDAG_CLAIM_LEASE_S="3",
        ARTDAG_HEARTBEAT_S="1",
        ARTDAG_ACK_WAIT_S="4",
    ) as st:
        with st.http() as http:
            with clip.open("rb") as handle:
                cid = http.post("/cache/upload", files={"file": ("clip.mp4", handle)}).json()["cid"]
            run_id = http.post("/runs", json={"recipe": RECIPE, "inputs": {"video": cid}}).json()["run_id"]
            step_id = http.get(f"/api/run/{run_id}/plan").json()["output_step"]

            holder = asyncio.run(_claim_holder(st.nats_url, st.bus_admin, step_id, timeout_s=20))
            victim = int(holder.rsplit("-", 1)[1])
            assert victim in st.descendants()
            time.sleep(0.3)  # well inside the render
            assert http.get(f"/runs/{run_id}").json()["status"] == "running"
            workers = descendants(victim)
            assert workers, "the executor renders in a worker process"
            os.kill(victim, signal.SIGKILL)

            deadline = time.monotonic() + 120
            while (run := http.get(f"/runs/{run_id}").json())["status"] not in ("completed", "failed"):
                assert time.monotonic() < deadline, run
                time.sleep(0.5)
            assert run["status"] == "completed", (run.get("error"), st.log.read_text()[-6000:])
            step = run["steps"][step_id]
            assert step["worker"] != holder
            # Its worker process died with it: no render goes on for nobody.
            assert [pid for pid in workers if alive(pid)] == []
            assert run["output_cid"] == cid_of_file(clean), "the re-render is the same file a clean run makes"

        # No partial blob anywhere in the store: every object (file or small row) hashes to its
        # name, no temp file is left.
        store = LocalContentStore(st.home / "cache")
        try:
            cids = list(store.cids())
            assert any(store.object_path(cid).is_file() for cid in cids), "the rendered videos are files"
            for cid in cids:
                path = store.object_path(cid)
                data = path.read_bytes() if path.is_file() else store.small.get(cid)
                assert data is not None and cid_of_bytes(data) == cid
        finally:
            store.small.close()
        assert list((st.home / "cache" / "tmp").iterdir()) == []
        assert "executor-1 exited with code -9; restarting" in st.log.read_text() or (
            "executor-2 exited with code -9; restarting" in st.log.read_text()
        )


def test_a_killed_planner_loses_nothing(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    write_test_clip(clip, width=160, height=120, fps=25, duration_s=2.0)
    recipe = """
name: three-steps
inputs: [video]
steps:
  - {id: a, type: RESIZE, inputs: [video], config: {width: 1280, height: 960, mode: stretch}}
  - {id: b, type: EFFECT, inputs: [a], config: {effect: swirl}}
  - {id: c, type: RESIZE, inputs: [b], config: {width: 320, height: 240}}
output: c
"""
    with running_stack(tmp_path / "home") as st, st.http() as http:
        with clip.open("rb") as handle:
            cid = http.post("/cache/upload", files={"file": ("clip.mp4", handle)}).json()["cid"]
        run_id = http.post("/runs", json={"recipe": recipe, "inputs": {"video": cid}}).json()["run_id"]
        deadline = time.monotonic() + 30
        while http.get(f"/runs/{run_id}").json()["status"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        planner = http.get("/health").json()["services"]["planner"]["instance"]
        os.kill(int(planner.rsplit("-", 1)[1]), signal.SIGKILL)
        # The launcher restarts it; the step events it missed wait in its durable consumer.
        deadline = time.monotonic() + 90
        while True:
            try:
                run = http.get(f"/runs/{run_id}").json()
            except httpx.HTTPError:
                run = {"status": "?"}
            if run.get("status") in ("completed", "failed"):
                break
            assert time.monotonic() < deadline, run
            time.sleep(0.3)
        assert run["status"] == "completed", (run.get("error"), st.log.read_text()[-6000:])
        assert http.get("/health").json()["services"]["planner"]["instance"] != planner
        assert "service planner exited with code -9; restarting" in st.log.read_text()


def _nats_server_pid(st: Stack) -> int:
    for pid in st.descendants():
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if command.endswith(b"nats-server") and alive(pid):
            return pid
    raise AssertionError("artdag up runs no nats-server")


def test_a_killed_nats_server_is_restarted_and_the_runs_complete(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    write_test_clip(clip, width=320, height=240, fps=25, duration_s=6.0)
    clean = tmp_path / "clean.mp4"
    render_resize(clip, clean, width=1280, height=720, mode="stretch")

    with running_stack(tmp_path / "home", "--executors", "2") as st, st.http(timeout=10) as http:
        with clip.open("rb") as handle:
            cid = http.post("/cache/upload", files={"file": ("clip.mp4", handle)}).json()["cid"]
        runs = [http.post("/runs", json={"recipe": RECIPE, "inputs": {"video": cid}}).json()["run_id"]]
        deadline = time.monotonic() + 30
        while http.get(f"/runs/{runs[0]}").json()["status"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        server = _nats_server_pid(st)
        os.kill(server, signal.SIGKILL)

        # The launcher brings it back on the same port and store; the services reconnect. Meanwhile
        # the API answers, with a 503 to retry where it needs the bus, never a 500.
        deadline = time.monotonic() + 60
        answers: list[httpx.Response] = []
        while True:
            try:
                answers.append(http.get("/runs"))
                answers.append(health := http.get("/health"))
                if health.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, st.log.read_text()[-3000:]
            time.sleep(0.1)
        assert {a.status_code for a in answers} <= {200, 503}, [(a.url.path, a.status_code, a.text) for a in answers]
        assert all("Retry-After" in a.headers for a in answers if a.status_code == 503), [
            (a.url.path, a.text) for a in answers if a.status_code == 503 and "Retry-After" not in a.headers
        ]
        assert _nats_server_pid(st) != server
        # New runs are accepted again, and the one in flight completes.
        runs.append(http.post("/runs", json={"recipe": RECIPE, "inputs": {"video": cid}}).json()["run_id"])
        deadline = time.monotonic() + 120
        for run_id in runs:
            while (run := http.get(f"/runs/{run_id}").json())["status"] not in ("completed", "failed"):
                assert time.monotonic() < deadline, run
                time.sleep(0.3)
            assert run["status"] == "completed", (run.get("error"), st.log.read_text()[-6000:])
            assert run["output_cid"] == cid_of_file(clean)
        assert "nats-server exited with code -9; restarting it" in st.log.read_text()
