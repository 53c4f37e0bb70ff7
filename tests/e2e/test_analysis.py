"""The analyzer over the bus: POST /api/analyze, `artdag analyze`, caching, clear refusals."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from artdag_cli.demo_media import write_click_track, write_test_clip
from tests.e2e.conftest import CLI, Stack

pytestmark = pytest.mark.e2e


def upload(client: httpx.Client, path: Path) -> str:
    with path.open("rb") as handle:
        response = client.post("/cache/upload", files={"file": (path.name, handle)})
    assert response.status_code == 201, response.text
    cid: str = response.json()["cid"]
    return cid


def test_a_click_track_gives_its_tempo_and_the_answer_is_cached(client: httpx.Client, tmp_path: Path) -> None:
    track = tmp_path / "click.wav"
    write_click_track(track, bpm=120, duration_s=12.0)
    cid = upload(client, track)
    first = client.post("/api/analyze", json={"cid": cid, "features": ["beats", "energy"]})
    assert first.status_code == 200, first.text
    body = first.json()
    beats = body["result"]["audio"]["beats"]
    assert beats["tempo"] == pytest.approx(120, rel=0.01)
    assert beats["beat_times"][1] - beats["beat_times"][0] == pytest.approx(0.5, abs=0.01)
    assert body["result"]["audio"]["energy"]["values"]
    assert body["cached"] is False
    again = client.post("/api/analyze", json={"cid": cid, "features": ["energy", "beats"]}).json()
    assert again["cached"] is True and again["analysis_id"] == body["analysis_id"]
    stored = client.get(f"/cache/{body['result_cid']}/raw")
    assert stored.status_code == 200 and json.loads(stored.content) == body["result"]
    other = client.post("/api/analyze", json={"cid": cid, "features": ["energy"], "params": {"window_ms": 100}})
    assert other.json()["analysis_id"] != body["analysis_id"], "parameters are part of the analysis id"


def test_refusals_name_the_problem(client: httpx.Client, tmp_path: Path) -> None:
    clip = tmp_path / "silent.mp4"
    write_test_clip(clip, width=64, height=48, fps=10, duration_s=1.0, with_audio=False)
    cid = upload(client, clip)
    no_audio = client.post("/api/analyze", json={"cid": cid, "features": ["beats"]})
    assert no_audio.status_code == 422
    assert "no audio stream" in no_audio.json()["detail"]
    unknown = client.post("/api/analyze", json={"cid": cid, "features": ["vibes"]})
    assert unknown.status_code == 422 and "features" in unknown.json()["detail"]
    bad_param = client.post("/api/analyze", json={"cid": cid, "features": ["energy"], "params": {"window_ms": -1}})
    assert bad_param.status_code == 422 and "params.window_ms" in bad_param.json()["detail"]
    missing = client.post(
        "/api/analyze", json={"cid": "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH", "features": ["beats"]}
    )
    assert missing.status_code == 404
    scenes = client.post("/api/analyze", json={"cid": cid, "features": ["scene_changes", "motion"]}).json()
    assert scenes["result"]["video"]["scene_changes"]["times"] == []


def test_the_cli_analyzes_a_file(stack: Stack, tmp_path: Path) -> None:
    track = tmp_path / "click.wav"
    write_click_track(track, bpm=90, duration_s=10.0)
    out = tmp_path / "analysis.json"
    result = subprocess.run(
        [str(CLI), "analyze", str(track), "--features", "beats", "-o", str(out), "--server", stack.url],
        capture_output=True,
        text=True,
        timeout=60,
        env=stack.cli_env(),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text())["audio"]["beats"]["tempo"] == pytest.approx(90, rel=0.01)
    # A tempo hint picks the level the beats come at; a bad one is the server's 422, naming it.
    for hint, code in (("45", 0), ("500", 1)):
        hinted = subprocess.run(
            [str(CLI), "analyze", str(track), "--features", "beats", "--tempo-hint", hint, "-o", str(out)],
            capture_output=True, text=True, timeout=60, env={**stack.cli_env(), "ARTDAG_SERVER": stack.url},
        )  # fmt: skip
        assert hinted.returncode == code, hinted.stderr
    assert json.loads(out.read_text())["audio"]["beats"]["tempo"] == pytest.approx(45, rel=0.02)
    assert "HTTP 422: params.tempo_hint: tempo_hint (500) must lie between" in hinted.stderr


HINTED = """
name: hinted
inputs:
  audio: {type: audio}
steps:
  - id: listen
    type: ANALYZE
    inputs: [audio]
    config: {features: [beats], params: PARAMS}
output: listen
"""


def test_bad_tempo_params_are_refused_when_the_recipe_comes_in(client: httpx.Client, tmp_path: Path) -> None:
    track = tmp_path / "hint.wav"
    write_click_track(track, bpm=140, duration_s=3.0)
    inputs = {"audio": upload(client, track)}
    for params, field, words in [
        ("{tempo_hint: 500}", "tempo_hint", "must lie between tempo_min (40) and tempo_max (240)"),
        ("{tempo_min: fast}", "tempo_min", "valid number"),
        ("{tempo_min: 100, tempo_max: 120}", "tempo_max", "at least 1.5 × tempo_min"),
        ("{min_bpm: 60}", "min_bpm", "it is called 'tempo_min' now"),
    ]:
        recipe = HINTED.replace("PARAMS", params)
        for path in ("/api/plan", "/runs", "/api/run-recipe", "/recipes/upload"):
            if path == "/recipes/upload":
                answer = client.post(path, content=recipe.encode(), headers={"content-type": "text/yaml"})
            else:
                answer = client.post(path, json={"recipe": recipe, "inputs": inputs})
            assert answer.status_code == 422, (path, answer.text)
            error = answer.json()["error"]
            assert error["field"] == f"steps[0].config.params.{field}" and words in error["message"], (path, error)
    direct = client.post(
        "/api/analyze", json={"cid": inputs["audio"], "features": ["beats"], "params": {"tempo_hint": 500}}
    )
    assert direct.status_code == 422 and direct.json()["error"]["field"] == "params.tempo_hint"
    assert "must lie between" in direct.json()["detail"]
