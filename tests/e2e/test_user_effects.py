"""Effects users write, against `artdag up`: stored by CID, named by recipes, rendered, and refused
with where and why when wrong (a bad source, an unknown CID, a value that is no frame)."""

from __future__ import annotations

from pathlib import Path

import av
import httpx
import numpy as np
import pytest

from artdag_cli.demo_media import write_test_clip
from tests.e2e.conftest import Stack
from tests.e2e.test_cli import artdag
from tests.e2e.test_planner_api import wait_for

pytestmark = pytest.mark.e2e

PAINT = b"""; every pixel one colour, mixed with the frame by `amount`
(define-effect paint
  :params ((color :type color :default [255 0 0])
           (amount :default 1.0 :range [0 1]))
  (mix frame color amount))
"""
RECIPE = """
name: user-effect
inputs: [clip]
steps:
  - {id: fx, type: EFFECT, inputs: [clip], config: {effect: FX_CID, params: FX_PARAMS}}
output: fx
"""


def _store(client: httpx.Client, name: str, body: bytes) -> str:
    stored = client.post("/cache/upload", files={"file": (name, body)})
    assert stored.status_code == 201, stored.text
    cid: str = stored.json()["cid"]
    return cid


def _recipe(effect: str, params: str = "{}") -> str:
    return RECIPE.replace("FX_CID", effect).replace("FX_PARAMS", params)


def test_a_stored_effect_renders_by_its_cid_and_names_its_steps(client: httpx.Client, tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    write_test_clip(clip, width=96, height=64, fps=10, duration_s=1.0, tone_hz=440.0)
    clip_cid = _store(client, "clip.mp4", clip.read_bytes())
    added = client.post("/effects", json={"source": PAINT.decode()})
    assert added.status_code == 201, added.text
    paint = added.json()["cid"]
    assert paint == _store(client, "paint.sexp", PAINT), "an effect is content: the same text, the same CID"
    assert [p["name"] for p in added.json()["params"]] == ["color", "amount"]
    assert added.json()["params"][1] == {
        "name": "amount",
        "type": "float",
        "default": 1.0,
        "min": 0.0,
        "max": 1.0,
        "description": "",
    }
    listed = client.get("/effects").json()
    assert paint in [e["cid"] for e in listed["effects"]] and listed["total"] >= 1
    shown = client.get(f"/effects/{paint}").json()
    assert (shown["name"], shown["source"]) == ("paint", PAINT.decode())
    assert client.get(f"/effects/{clip_cid}").status_code == 404, "a video is no effect"

    run = client.post("/runs", json={"recipe": _recipe(paint, "{color: [0, 0, 255]}"), "inputs": {"clip": clip_cid}})
    assert run.status_code == 202, run.text
    done = wait_for(client, run.json()["run_id"])
    assert done["status"] == "completed", done
    out = tmp_path / "painted.mp4"
    out.write_bytes(client.get(f"/cache/{done['output_cid']}/raw").content)
    with av.open(str(out)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert np.abs(frame.astype(int).mean(axis=(0, 1)) - [0, 0, 255]).max() < 12

    # The step id follows the effect's exact text: another source, another step; the same, cached.
    plans = [
        client.post("/api/plan", json={"recipe": _recipe(effect, "{amount: 0.5}"), "inputs": {"clip": clip_cid}})
        for effect in (paint, _store(client, "paint2.sexp", PAINT + b"; a comment changes the text\n"), paint)
    ]
    ids = [p.json()["plan"]["output_step"] for p in plans]
    assert ids[0] != ids[1] and ids[0] == ids[2]
    # Parameters are checked against the effect's own declarations.
    bad = client.post("/runs", json={"recipe": _recipe(paint, "{amount: 3}"), "inputs": {"clip": clip_cid}})
    assert bad.status_code == 422 and "amount" in bad.text and "less than or equal to 1" in bad.text


def test_wrong_effects_are_refused_with_where_and_why(client: httpx.Client, tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    write_test_clip(clip, width=64, height=48, fps=10, duration_s=0.5, tone_hz=550.0)
    clip_cid = _store(client, "clip.mp4", clip.read_bytes())
    source = '(define-effect escape\n  (open "/etc/passwd"))'
    checked = client.post("/effects", json={"source": source})
    assert checked.status_code == 422 and "line 2, column 4" in checked.json()["detail"], checked.text
    assert checked.json()["error"]["field"] == "source"
    escape = _store(client, "escape.sexp", source.encode())
    refused = client.post("/runs", json={"recipe": _recipe(escape), "inputs": {"clip": clip_cid}})
    assert refused.status_code == 422, refused.text
    assert "line 2, column 4" in refused.json()["detail"] and "unknown function 'open'" in refused.json()["detail"]
    # A CID nobody stored.
    missing = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
    unknown = client.post("/runs", json={"recipe": _recipe(missing), "inputs": {"clip": clip_cid}})
    assert unknown.status_code == 422 and "upload it first" in unknown.text
    # A value that turns infinite fails the run, naming the effect; nothing is left half-made.
    divide = _store(client, "divide.sexp", b"(define-effect divide (/ frame (- frame frame)))")
    run = client.post("/runs", json={"recipe": _recipe(divide), "inputs": {"clip": clip_cid}})
    assert run.status_code == 202, run.text
    failed = wait_for(client, run.json()["run_id"])
    assert failed["status"] == "failed" and "not a number" in failed["error"], failed


def test_the_authoring_loop_from_the_command_line(stack: Stack, tmp_path: Path) -> None:
    source = tmp_path / "paint.effect"
    source.write_bytes(PAINT)
    added = artdag(stack, "effect", "add", str(source))
    cid, name = added.stdout.split()
    assert name == "paint" and cid.startswith("Qm")
    clip = tmp_path / "clip.mp4"
    write_test_clip(clip, width=64, height=48, fps=10, duration_s=0.5, tone_hz=660.0)
    out = tmp_path / "preview.mp4"
    artdag(stack, "effect", "preview", str(source), str(clip), "-p", "color=[0, 255, 0]", "-o", str(out))
    with av.open(str(out)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert np.abs(frame.astype(int).mean(axis=(0, 1)) - [0, 255, 0]).max() < 12
    broken = tmp_path / "broken.effect"
    broken.write_text("(define-effect broken\n  (+ frame nothing))")
    refused = artdag(stack, "effect", "add", str(broken), check=False)
    assert (
        refused.returncode != 0 and "line 2, column 12" in refused.stderr and "unknown name 'nothing'" in refused.stderr
    )
