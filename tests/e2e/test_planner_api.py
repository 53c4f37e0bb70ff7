"""Recipes, the 3-phase API, cancellation and early cutoff, over HTTP against `artdag up`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from artdag_cli.demo_media import write_test_clip
from artdag_common.examples import example_recipes
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

CHAIN = """
name: chain
inputs: [video]
steps:
  - {id: small, type: RESIZE, inputs: [video], config: {width: 160, height: 120, mode: MODE}}
  - {id: negative, type: EFFECT, inputs: [small], config: {effect: invert}}
output: negative
"""


def upload(client: httpx.Client, path: Path) -> str:
    with path.open("rb") as handle:
        response = client.post("/cache/upload", files={"file": (path.name, handle)})
    assert response.status_code == 201, response.text
    cid: str = response.json()["cid"]
    return cid


def wait_for(client: httpx.Client, run_id: str, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while (run := client.get(f"/runs/{run_id}").json())["status"] not in ("completed", "failed", "cancelled"):
        assert time.monotonic() < deadline, run
        time.sleep(0.1)
    body: dict[str, Any] = run
    return body


@pytest.fixture(scope="module")
def clip_cid(client: httpx.Client, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("media") / "four-three.mp4"
    write_test_clip(path, width=320, height=240, fps=25, duration_s=1.0)
    return upload(client, path)


def test_examples_are_registered_at_start_up(client: httpx.Client) -> None:
    body = client.get("/recipes", params={"limit": 100}).json()
    names = {r["name"] for r in body["recipes"]}
    assert {"resize-demo", "three-clip-sequence"} <= names
    assert body["total"] >= len(example_recipes())
    assert all(r["example"] for r in body["recipes"] if r["name"] in {"resize-demo", "three-clip-sequence"})


def test_recipe_upload_get_run_delete(client: httpx.Client, clip_cid: str) -> None:
    text = CHAIN.replace("MODE", "fit")
    uploaded = client.post("/recipes/upload", files={"file": ("chain.yaml", text.encode())})
    assert uploaded.status_code == 201, uploaded.text
    recipe = uploaded.json()
    assert recipe["recipe_id"].startswith("Qm") and recipe["name"] == "chain"
    assert [i["name"] for i in recipe["inputs"]] == ["video"]
    again = client.post("/recipes/upload", content=text.encode(), headers={"content-type": "text/yaml"}).json()
    assert again["recipe_id"] == recipe["recipe_id"], "the id is the cid of the recipe's meaning"
    assert client.get(f"/recipes/{recipe['recipe_id']}").json()["text"] == text
    run = client.post(f"/recipes/{recipe['recipe_id']}/run", json={"inputs": {"video": clip_cid}})
    assert run.status_code == 202, run.text
    assert wait_for(client, run.json()["run_id"])["status"] == "completed"
    assert client.delete(f"/recipes/{recipe['recipe_id']}").status_code == 200
    assert client.get(f"/recipes/{recipe['recipe_id']}").status_code == 404
    bad = client.post("/recipes/upload", content=b"steps: [\n", headers={"content-type": "text/yaml"})
    assert bad.status_code == 400 and "line" in bad.json()["detail"]
    assert client.get("/recipes/not-a-recipe").status_code == 404  # a name no recipe has
    malformed = client.get("/recipes/not a name")
    assert malformed.status_code == 422 and "name@cid" in malformed.json()["detail"]


def test_recipes_by_name_newest_visible_version_or_exact(stack: Stack, client: httpx.Client, clip_cid: str) -> None:
    first = client.post(
        "/recipes/upload",
        content=CHAIN.replace("chain", "by-name").replace("MODE", "fit").encode(),
        headers={"content-type": "text/yaml"},
    ).json()
    time.sleep(0.01)
    second = client.post(
        "/recipes/upload",
        content=CHAIN.replace("chain", "by-name").replace("MODE", "pad").encode(),
        headers={"content-type": "text/yaml"},
    ).json()
    assert first["recipe_id"] != second["recipe_id"]
    # The name: the newest version; name@cid: that one, if it carries that name.
    assert client.get("/recipes/by-name").json()["recipe_id"] == second["recipe_id"]
    assert client.get(f"/recipes/by-name@{first['recipe_id']}").json()["recipe_id"] == first["recipe_id"]
    assert client.get(f"/recipes/chain@{first['recipe_id']}").status_code == 404
    # The original README's form: run by name.
    run = client.post("/recipes/by-name/run", json={"inputs": {"video": clip_cid}})
    assert run.status_code == 202, run.text
    assert wait_for(client, run.json()["run_id"])["status"] == "completed"
    assert client.get(f"/runs/{run.json()['run_id']}").json()["recipe_id"] == second["recipe_id"]
    planned = client.post("/api/plan", json={"recipe_id": "by-name", "inputs": {"video": clip_cid}})
    assert planned.status_code == 200 and planned.json()["plan"]["recipe_id"] == second["recipe_id"]
    # The web UI's recipe page by name.
    assert client.get("/recipe/by-name", headers={"accept": "text/html"}).status_code == 200
    # Another user sees no one else's recipe by its name, but sees the examples by theirs.
    other = {"Authorization": f"Bearer {stack.token_for('by-name-stranger')}"}
    assert client.get("/recipes/by-name", headers=other).status_code == 404
    assert client.get("/recipes/resize-demo", headers=other).json()["example"] is True
    # Deleting by name deletes the newest; the name then finds the older one.
    assert client.delete("/recipes/by-name").status_code == 200
    assert client.get("/recipes/by-name").json()["recipe_id"] == first["recipe_id"]


def test_dry_run_then_execute(client: httpx.Client, clip_cid: str) -> None:
    text = CHAIN.replace("MODE", "pad").replace("width: 160, height: 120", "width: 96, height: 72")
    planned = client.post("/api/plan", json={"recipe": text, "inputs": {"video": clip_cid}})
    assert planned.status_code == 200, planned.text
    body = planned.json()
    statuses = {s["name"]: s["status"] for s in body["steps"]}
    assert statuses == {"input:video": "input", "negative": "to-run"}
    fused = body["steps"][1]
    assert fused["node_type"] == "CHAIN" and fused["covers"] == ["small", "negative"], "resize and effect: one pass"
    assert body["cost_frames"] == 25  # one step encodes the clip's 25 frames once
    assert body["encodes_per_output_frame"] == 1.0 and body["output_frames"] == 25
    assert [s["level"] for s in body["steps"]] == [0, 1]
    run = client.post("/api/execute", json={"plan_id": body["plan"]["plan_id"]})
    assert run.status_code == 202, run.text
    assert run.json()["plan_id"] == body["plan"]["plan_id"]
    assert wait_for(client, run.json()["run_id"])["status"] == "completed"
    replanned = client.post("/api/plan", json={"recipe": text, "inputs": {"video": clip_cid}}).json()
    assert {s["status"] for s in replanned["steps"] if s["node_type"] != "SOURCE"} == {"cached"}
    assert replanned["cost_frames"] == 0
    assert client.post("/api/execute", json={"plan_id": "f" * 64}).status_code == 404
    one_call = client.post("/api/run-recipe", json={"recipe": text, "inputs": {"video": clip_cid}})
    assert one_call.status_code == 202
    assert wait_for(client, one_call.json()["run_id"])["status"] == "completed"


TWICE = CHAIN.replace(
    "output: negative", "  - {id: twice, type: SEQUENCE, inputs: [negative, negative]}\noutput: twice"
)


def test_early_cutoff_serves_dependants_of_identical_bytes(client: httpx.Client, clip_cid: str) -> None:
    # On a 4:3 input, fit and stretch to 4:3 make the same pixels: the same bytes under another step id.
    # small and negative are one fused step; the cut after it reads it twice, so it stays a step of its own.
    first = client.post(
        "/runs",
        json={
            "recipe": TWICE.replace("MODE", "fit").replace("160", "128").replace("120", "96"),
            "inputs": {"video": clip_cid},
        },
    ).json()
    assert wait_for(client, first["run_id"])["status"] == "completed"
    rendered = client.get("/health").json()["services"]["executor"]["details"]["rendered"]
    second = client.post(
        "/runs",
        json={
            "recipe": TWICE.replace("MODE", "stretch").replace("160", "128").replace("120", "96"),
            "inputs": {"video": clip_cid},
        },
    ).json()
    run = wait_for(client, second["run_id"])
    assert run["status"] == "completed"
    steps = {s["name"]: s for s in run["steps"].values()}
    assert steps["negative"]["status"] == "completed", "a new step id for the fused small → negative: rendered"
    assert steps["twice"]["status"] == "cached", "its input's bytes were seen before: served from the cache"
    after = client.get("/health").json()["services"]["executor"]["details"]["rendered"]
    assert after == rendered + 1


def test_delete_cancels_a_running_run(client: httpx.Client, tmp_path: Path) -> None:
    path = tmp_path / "long.mp4"
    write_test_clip(path, width=320, height=240, fps=25, duration_s=8.0)
    cid = upload(client, path)
    recipe = """
name: slow
inputs: [video]
steps:
  - {id: a, type: RESIZE, inputs: [video], config: {width: 1280, height: 960, mode: stretch}}
  - {id: b, type: EFFECT, inputs: [a], config: {effect: swirl}}
output: b
"""
    failed_before = client.get("/health").json()["services"]["executor"]["details"]["failed"]
    run_id = client.post("/runs", json={"recipe": recipe, "inputs": {"video": cid}}).json()["run_id"]
    deadline = time.monotonic() + 30
    while client.get(f"/runs/{run_id}").json()["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    deleted = client.delete(f"/runs/{run_id}")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["status"] == "cancelled"
    assert client.get(f"/runs/{run_id}").status_code == 404
    assert run_id not in {r["run_id"] for r in client.get("/runs", params={"limit": 500}).json()["runs"]}
    # Its later step is never rendered: executors drop work of cancelled runs.
    time.sleep(4)
    dropped_or_idle = client.get("/health").json()["services"]["executor"]["details"]
    assert dropped_or_idle["failed"] == failed_before
    assert client.delete(f"/runs/{run_id}").status_code == 404


def test_a_list_of_clips_is_mapped_and_joined(client: httpx.Client, tmp_path: Path) -> None:
    cids = []
    for i, (w, h) in enumerate([(160, 120), (320, 180), (96, 96)]):
        path = tmp_path / f"clip{i}.mp4"
        write_test_clip(path, width=w, height=h, fps=25, duration_s=0.6, tone_hz=300.0 + 100 * i)
        cids.append(upload(client, path))
    recipe = """
name: montage
inputs:
  clips: {type: video, list: true}
steps:
  - {id: small, type: MAP, inputs: [clips], config: {operation: RESIZE, config: {width: 64, height: 48}}}
  - {id: all, type: SEQUENCE, inputs: [small], config: {transition: {type: crossfade, duration: 0.2}}}
output: all
"""
    response = client.post("/runs", json={"recipe": recipe, "inputs": {"clips": ",".join(cids)}})
    assert response.status_code == 202, response.text
    run = wait_for(client, response.json()["run_id"])
    assert run["status"] == "completed", run
    kinds = [s["node_type"] for s in run["steps"].values()]
    assert kinds.count("RESIZE") == 3 and kinds.count("SEQUENCE") == 2
