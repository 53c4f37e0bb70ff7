"""End to end: `artdag up` as a user starts it, then upload → run → download over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy

from artdag_cli.demo_media import write_test_clip
from artdag_common import subjects
from artdag_common.bus import connect
from artdag_common.cid import cid_of_bytes, cid_of_file
from artdag_common.content_store import LocalContentStore
from artdag_common.examples import example_path
from tests.e2e.conftest import UPLOAD_LIMIT, Stack

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
RECIPE = example_path("resize").read_text()


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("media") / "clip.mp4"
    write_test_clip(path, width=640, height=360, fps=25, duration_s=2.0)
    return path


def upload(client: httpx.Client, path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        response = client.post("/cache/upload", files={"file": (path.name, handle, "application/octet-stream")})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_for(client: httpx.Client, run_id: str, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        body: dict[str, Any] = client.get(f"/runs/{run_id}").json()
        assert "status" in body, body
        if body["status"] in ("completed", "failed"):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.1)


def executor_rendered(client: httpx.Client) -> int:
    health = client.get("/health").json()
    rendered: int = health["services"]["executor"]["details"]["rendered"]
    return rendered


def run_statuses(stack: Stack, run_id: str) -> list[str]:
    """The run's events as the bus recorded them, in order."""
    import asyncio

    async def collect() -> list[str]:
        nc = await connect(stack.nats_url, "pytest-e2e", login=stack.bus_admin)
        try:
            js = nc.jetstream()
            sub = await js.subscribe(
                subjects.run_events(run_id),
                ordered_consumer=True,
                config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
            )
            statuses: list[str] = []
            try:
                while True:
                    msg = await sub.next_msg(timeout=1)
                    statuses.append(json.loads(msg.data)["status"])
            except Exception:  # noqa: BLE001 - nats TimeoutError: no more events
                pass
            await sub.unsubscribe()
            return statuses
        finally:
            await nc.close()

    return asyncio.run(collect())


def test_health_reports_every_service_and_the_bus(client: httpx.Client) -> None:
    body = client.get("/health").json()
    assert body["ok"] is True
    assert body["bus"]["connected"] is True
    assert body["degraded"] == [] and body["disk"]["free_bytes"] >= body["disk"]["reserve_bytes"] > 0
    assert set(body["services"]) == set(subjects.SERVICES)
    pids = {s["instance"].rsplit("-", 1)[1] for s in body["services"].values()}
    assert len(pids) == 6  # six separate processes


def test_upload_run_download(stack: Stack, client: httpx.Client, clip: Path) -> None:
    uploaded = upload(client, clip)
    assert uploaded["cid"] == cid_of_file(clip)
    assert uploaded["media_type"] == "video/mp4"
    assert uploaded["size"] == clip.stat().st_size
    before = executor_rendered(client)

    response = client.post("/runs", json={"recipe": RECIPE, "inputs": {"video": uploaded["cid"]}})
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    assert response.json()["status"] == "pending"
    run = wait_for(client, run_id)
    assert run["status"] == "completed", run
    assert run_statuses(stack, run_id) == ["pending", "running", "completed"]
    assert executor_rendered(client) == before + 1
    (resize,) = [s for s in run["steps"].values() if s["node_type"] == "RESIZE"]
    assert resize["status"] == "completed"
    plan = client.get(f"/api/run/{run_id}/plan").json()
    assert [s["node_type"] for s in plan["steps"]] == ["SOURCE", "RESIZE"]
    stored_plan = client.get(f"/cache/{run['plan_cid']}/raw").json()
    assert stored_plan["plan_id"] == plan["plan_id"] == run["plan_id"], "the plan is content too, by CID"
    assert plan["steps"][0]["source_cid"] == uploaded["cid"]
    assert plan["output_step"] in run["steps"]

    raw = client.get(f"/cache/{run['output_cid']}/raw")
    assert raw.status_code == 200
    assert cid_of_bytes(raw.content) == run["output_cid"]
    out = stack.home / "out.mp4"
    out.write_bytes(raw.content)
    with av.open(str(out)) as container:
        video = container.streams.video[0]
        assert container.streams.audio, "the sound is carried through"
        frames = list(container.decode(video))
    assert {(f.width, f.height) for f in frames} == {(320, 240)}
    assert len(frames) == 50  # 2 s at 25 fps

    ranged = client.get(f"/cache/{run['output_cid']}/raw", headers={"Range": "bytes=100-199"})
    assert ranged.status_code == 206
    assert ranged.content == raw.content[100:200]
    assert ranged.headers["content-range"] == f"bytes 100-199/{len(raw.content)}"

    # The same run again: every step served from the cache, no executor work.
    again = client.post("/runs", json={"recipe": RECIPE, "inputs": {"video": uploaded["cid"]}}).json()
    rerun = wait_for(client, again["run_id"])
    assert rerun["status"] == "completed"
    assert rerun["output_cid"] == run["output_cid"]
    assert [s["status"] for s in rerun["steps"].values() if s["node_type"] != "SOURCE"] == ["cached"]
    assert executor_rendered(client) == before + 1


def test_runs_are_listed_newest_first(client: httpx.Client) -> None:
    body = client.get("/runs", params={"limit": 2}).json()
    assert body["total"] >= 2
    assert len(body["runs"]) == 2
    assert body["runs"][0]["created_at"] >= body["runs"][1]["created_at"]
    # The two runs of test_upload_run_download: the record keeps their times and their steps by outcome.
    rerun, first = body["runs"]
    for run in (rerun, first):
        assert run["status"] == "completed"
        assert run["created_at"] <= run["started_at"] <= run["finished_at"]
        assert run["steps"]["done"] == run["steps"]["total"] == 2  # the source and the resize
        assert run["steps"]["failed"] == 0
    assert (first["steps"]["cached"], rerun["steps"]["cached"]) == (0, 1)


def stored_cids(home: Path) -> set[str]:
    """Every object in the stack's local store: files and small-object rows."""
    store = LocalContentStore(home / "cache")
    try:
        return set(store.cids())
    finally:
        store.small.close()


def test_undecodable_media_fails_the_run_cleanly(stack: Stack, client: httpx.Client, tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(os.urandom(50_000))
    cid = upload(client, junk)["cid"]
    objects_before = stored_cids(stack.home)
    run_id = client.post("/runs", json={"recipe": RECIPE, "inputs": {"video": cid}}).json()["run_id"]
    run = wait_for(client, run_id)
    assert run["status"] == "failed"
    assert "step 'small' (RESIZE)" in run["error"]
    assert "input 'video'" in run["error"]
    # Nothing partial in the store: no new object but the run's plan, no temp file, no scratch file.
    after = stored_cids(stack.home)
    # Earlier runs' provenance records may still be arriving (the cache writes them when it sees a run
    # complete): those are whole, registered records; anything else new would be a partial write.
    late = set(after) - set(objects_before) - {run["plan_cid"]}
    assert all(client.get(f"/cache/{c}/meta").json().get("origin") == "provenance" for c in late), late
    assert run["plan_cid"] in after
    assert list((stack.home / "cache" / "tmp").iterdir()) == []
    assert [p for p in (stack.home / "scratch").rglob("*") if p.is_file()] == []


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"recipe": "name: [oops", "inputs": {}}, 400, "not valid YAML"),
        (
            {"recipe": RECIPE, "inputs": {"audio": "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"}},
            422,
            "inputs.audio",
        ),
        (
            {"recipe": RECIPE, "inputs": {"video": "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"}},
            422,
            "upload it first",
        ),
        ({"recipe": RECIPE, "inputs": {"video": "nope"}}, 422, "inputs.video"),
        ({"recipe": RECIPE.replace("RESIZE", "EXPLODE"), "inputs": {}}, 422, "unknown node type 'EXPLODE'"),
        ({"inputs": {}}, 422, "recipe"),
    ],
)
def test_bad_runs_are_refused_with_the_reason(
    client: httpx.Client, body: dict[str, Any], status: int, words: str
) -> None:
    response = client.post("/runs", json=body)
    assert response.status_code == status, response.text
    assert words in response.json()["detail"]


def test_content_lookups(client: httpx.Client) -> None:
    assert client.get("/cache/QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH/raw").status_code == 404
    bad = client.get("/cache/not-a-cid/raw")
    assert bad.status_code == 400
    assert "cid" in bad.json()["detail"]
    assert client.get("/cache/..%2F..%2Fetc%2Fpasswd/raw").status_code in (400, 404)
    assert client.get("/runs/run-" + "0" * 32).status_code == 404
    assert client.get("/runs/../../etc").status_code == 404


def test_an_upload_over_the_limit_is_refused_and_not_stored(stack: Stack, client: httpx.Client, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(UPLOAD_LIMIT + 1))
    before = stored_cids(stack.home)
    response = upload_raw(client, big)
    assert response.status_code == 413
    assert "MAX_UPLOAD_BYTES" in response.json()["detail"]
    assert stored_cids(stack.home) == before
    assert list((stack.home / "cache" / "tmp").iterdir()) == []
    no_file = client.post("/cache/upload", files={"name": (None, "x")})
    assert no_file.status_code == 422


def upload_raw(client: httpx.Client, path: Path) -> httpx.Response:
    with path.open("rb") as handle:
        return client.post("/cache/upload", files={"file": (path.name, handle)})


def test_the_cli_renders_a_recipe(stack: Stack, clip: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "resize.yaml"
    recipe.write_text(RECIPE)
    out = tmp_path / "out.mp4"
    cli = Path(sys.executable).parent / "artdag"
    result = subprocess.run(
        [str(cli), "render", str(recipe), "-i", f"video={clip}", "-o", str(out), "--server", stack.url],
        capture_output=True,
        text=True,
        timeout=120,
        env=stack.cli_env(),
    )
    assert result.returncode == 0, result.stderr
    assert out.exists()
    assert cid_of_file(out) in result.stdout
    failed = subprocess.run(
        [str(cli), "render", str(recipe), "-i", "video=/no/such/file", "--server", stack.url],
        capture_output=True,
        text=True,
        timeout=60,
        env=stack.cli_env(),
    )
    assert failed.returncode != 0
    assert "neither a file nor a CID" in failed.stderr


def test_a_long_effect_renders_in_chunks_joined_without_a_seam(
    stack: Stack, client: httpx.Client, tmp_path: Path
) -> None:
    clip = tmp_path / "long.mp4"
    write_test_clip(clip, width=160, height=120, fps=25, duration_s=5.0)  # 125 frames; chunks of 48
    cid = upload(client, clip)["cid"]
    recipe = """
name: glow
inputs: [video]
steps:
  - {id: fx, type: EFFECT, inputs: [video], config: {effect: color_cycle}}
output: fx
"""
    run_id = client.post("/runs", json={"recipe": recipe, "inputs": {"video": cid}}).json()["run_id"]
    run = wait_for(client, run_id)
    assert run["status"] == "completed", run
    plan = client.get(f"/api/run/{run_id}/plan").json()
    kinds = [s["node_type"] for s in plan["steps"]]
    assert kinds == ["SOURCE", "EFFECT", "EFFECT", "EFFECT", "JOIN"]
    assert [s["config"]["frames"] for s in plan["steps"][1:4]] == [[0, 48], [48, 96], [96, 125]]
    out = tmp_path / "out.mp4"
    out.write_bytes(client.get(f"/cache/{run['output_cid']}/raw").content)
    with av.open(str(out)) as container:
        assert container.streams.audio
        assert sum(1 for _ in container.decode(video=0)) == 125
