"""The original README's beat-sync recipe, as written, on generated media; and effects that follow analysis."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from artdag_cli.demo_media import write_click_track, write_test_clip
from artdag_common.examples import example_path

pytestmark = pytest.mark.e2e


def upload(client: httpx.Client, path: Path) -> str:
    with path.open("rb") as handle:
        response = client.post("/cache/upload", files={"file": (path.name, handle)})
    assert response.status_code == 201, response.text
    cid: str = response.json()["cid"]
    return cid


def wait_for(client: httpx.Client, run_id: str, timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while (run := client.get(f"/runs/{run_id}").json())["status"] not in ("completed", "failed"):
        assert time.monotonic() < deadline, run
        time.sleep(0.2)
    body: dict[str, Any] = run
    return body


@pytest.fixture(scope="module")
def media(client: httpx.Client, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    directory = tmp_path_factory.mktemp("beats")
    video, track = directory / "video.mp4", directory / "track.wav"
    write_test_clip(video, width=160, height=120, fps=25, duration_s=4.0)
    write_click_track(track, bpm=120, duration_s=4.2)
    return {"video": upload(client, video), "audio": upload(client, track)}


def test_the_readme_beat_sync_recipe_runs(client: httpx.Client, media: dict[str, str], tmp_path: Path) -> None:
    recipe = example_path("beat-sync").read_text()
    response = client.post("/runs", json={"recipe": recipe, "inputs": media})
    assert response.status_code == 202, response.text
    run = wait_for(client, response.json()["run_id"])
    assert run["status"] == "completed", run
    plan = client.get(f"/api/run/{run['run_id']}/plan").json()
    kinds = [s["node_type"] for s in plan["steps"]]
    assert kinds.count("ANALYZE") == 1 and kinds[-1] == "MUX"
    # The slices and their stretches are cut together a group at a time (CUTS), each naming what it covers.
    covered = [name for s in plan["steps"] for name in s["covers"]]
    slices = [name for name in covered if "/slice" in name]
    assert len(slices) >= 6  # a beat every 0.5 s over ~4 s
    assert {s["node_type"] for s in plan["steps"]} == {"SOURCE", "ANALYZE", "CUTS", "SEQUENCE", "MUX"}
    analysis = client.get(f"/api/run/{run['run_id']}/analysis").json()["analyses"]["analyze_audio"]
    assert analysis["result"]["audio"]["beats"]["tempo"] == pytest.approx(120, rel=0.02)
    out = tmp_path / "synced.mp4"
    out.write_bytes(client.get(f"/cache/{run['output_cid']}/raw").content)
    with av.open(str(out)) as container:
        assert container.streams.video and container.streams.audio
        beats = analysis["result"]["audio"]["beats"]["beat_times"]
        duration = float(container.duration or 0) / av.time_base
        assert duration == pytest.approx(beats[-1] - beats[0], abs=0.3)


def test_an_effect_pulses_on_the_beats(client: httpx.Client, media: dict[str, str]) -> None:
    recipe = """
name: pulse
inputs:
  video: {type: video}
  audio: {type: audio}
steps:
  - {id: listen, type: ANALYZE, inputs: [audio], config: {features: [beats]}}
  - id: pulse
    type: EFFECT
    inputs: [video]
    config:
      effect: brightness_contrast
      params: {contrast: 1.0}
      bindings:
        brightness: {analysis: listen, feature: beats, decay: 0.1, range: [0.0, 0.5]}
output: pulse
"""
    run = wait_for(client, client.post("/runs", json={"recipe": recipe, "inputs": media}).json()["run_id"])
    assert run["status"] == "completed", run
    plan = client.get(f"/api/run/{run['run_id']}/plan").json()
    effects = [s for s in plan["steps"] if s["node_type"] == "EFFECT"]  # chunks of it, on this stack
    assert effects
    events = effects[0]["config"]["bindings"]["brightness"]["events"]
    assert events[1] - events[0] == pytest.approx(0.5, abs=0.02), "the analysed beats are in the step's config"
    bad = recipe.replace("analysis: listen", "analysis: nowhere")
    refused = client.post("/runs", json={"recipe": bad, "inputs": media})
    assert refused.status_code == 422 and "'nowhere' is not an ANALYZE step" in refused.json()["detail"]
