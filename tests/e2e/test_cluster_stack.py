"""The whole stack on a 3-server JetStream cluster with ARTDAG_NATS_REPLICAS=3: losing a server mid-run
(the leader of the tasks stream) loses no run and no step, and changes no output."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from artdag_cli.demo_media import write_test_clip
from artdag_common import streams
from artdag_common.bus import connect
from artdag_common.bus_access import BusCredentials
from artdag_common.cid import cid_of_file
from artdag_common.nats_server import EmbeddedNatsCluster, EmbeddedNatsServer
from services.executor.primitives.resize import render_resize
from tests.e2e.conftest import running_stack

pytestmark = pytest.mark.e2e

RECIPE = """
name: upscale
inputs: [video]
steps:
  - {id: big, type: RESIZE, inputs: [video], config: {width: 1280, height: 720, mode: stretch}}
output: big
"""


async def _tasks_leader(cluster: EmbeddedNatsCluster, timeout_s: float = 30.0) -> str:
    """The name of the server that leads the tasks stream, once it has three replicas."""
    nc = await connect(cluster.url, "pytest-cluster-stack", login=cluster.admin)
    try:
        js = nc.jetstream()
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                info = await js.stream_info(streams.TASKS.name or "")
                if info.cluster is not None and info.cluster.leader and info.config.num_replicas == 3:
                    return info.cluster.leader
            except Exception:  # noqa: BLE001 - a cluster still electing answers nothing yet
                pass
            assert time.monotonic() < deadline, "no tasks stream with three replicas"
            await asyncio.sleep(0.2)
    finally:
        await nc.close()


def _submit(http: httpx.Client, cid: str, timeout_s: float = 20.0) -> str:
    """Submit a run, retrying the 503s of a cluster electing a leader; never a 500."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = http.post("/runs", json={"recipe": RECIPE, "inputs": {"video": cid}})
        if answer.status_code in (200, 201, 202):
            return str(answer.json()["run_id"])
        assert answer.status_code == 503 and "Retry-After" in answer.headers, answer.text
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.5)


def test_the_stack_survives_losing_the_leader_of_its_tasks(tmp_path: Path) -> None:
    clips, clean = [], []
    for k in range(3):
        clip = tmp_path / f"clip{k}.mp4"
        write_test_clip(clip, width=320, height=240, fps=25, duration_s=4.0 + k)
        out = tmp_path / f"clean{k}.mp4"
        render_resize(clip, out, width=1280, height=720, mode="stretch")
        clips.append(clip)
        clean.append(cid_of_file(out))

    # The logins the stack's services use, made in its home first: the cluster's servers take them too.
    credentials = BusCredentials.ensure(tmp_path / "home")
    with (
        EmbeddedNatsCluster(tmp_path / "cluster", credentials=credentials) as cluster,
        running_stack(tmp_path / "home", "--nats-url", cluster.url, "--executors", "2", ARTDAG_NATS_REPLICAS="3") as st,
        st.http(timeout=15) as http,
    ):
        leader_name = asyncio.run(_tasks_leader(cluster))
        cids = []
        for clip in clips:
            with clip.open("rb") as handle:
                cids.append(http.post("/cache/upload", files={"file": (clip.name, handle)}).json()["cid"])
        runs = [_submit(http, cid) for cid in cids]
        deadline = time.monotonic() + 30
        while http.get(f"/runs/{runs[0]}").json()["status"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)

        leader: EmbeddedNatsServer = cluster.server_named(leader_name)
        assert leader.process is not None
        leader.process.kill()
        leader.process.wait()
        killed_at = time.monotonic()

        # New runs are accepted within seconds (the same input again: its result is found).
        runs.append(_submit(http, cids[0]))
        assert time.monotonic() - killed_at < 20
        deadline = time.monotonic() + 180
        outputs = []
        for run_id in runs:
            while True:
                answer = http.get(f"/runs/{run_id}")
                assert answer.status_code in (200, 503), answer.text
                run = answer.json() if answer.status_code == 200 else {"status": "?"}
                if run["status"] in ("completed", "failed", "cancelled"):
                    break
                assert time.monotonic() < deadline, run
                time.sleep(0.3)
            assert run["status"] == "completed", (run.get("error"), st.log.read_text()[-6000:])
            outputs.append(run["output_cid"])
        assert outputs == [*clean, clean[0]], "the same bytes a clean run makes"
        assert asyncio.run(_tasks_leader(cluster)) != leader_name

        # The lost server comes back and catches up.
        leader.restart()
        assert asyncio.run(_all_current(cluster)), "the restarted server caught up"


async def _all_current(cluster: EmbeddedNatsCluster, timeout_s: float = 30.0) -> bool:
    nc = await connect(cluster.url, "pytest-cluster-stack", login=cluster.admin)
    try:
        js = nc.jetstream()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                info = await js.stream_info(streams.TASKS.name or "")
                peers = (info.cluster.replicas or []) if info.cluster else []
                if len(peers) == 2 and all(p.current and not p.offline for p in peers):
                    return True
            except Exception:  # noqa: BLE001 - still electing
                pass
            await asyncio.sleep(0.3)
        return False
    finally:
        await nc.close()
