"""Effects users write, against `artdag up`: stored by CID, named by recipes (by CID or by a registered
name), rendered, and refused with where and why when wrong (a bad source, an unknown CID or name, a
built-in's name, a value that is no frame)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import av
import httpx
import numpy as np
import pytest

from artdag_cli.demo_media import write_test_clip
from artdag_common.cid import cid_of_bytes
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
        "choices": None,
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


TINT = """(define-effect tint
  :params ((color :type color :default [0 0 255]))
  (mix frame color 1))
"""
# Another text (so another CID) that paints another colour.
TINT_GREEN = TINT.replace("[0 0 255]", "[0 255 0]")


def _plan(client: httpx.Client, effect: str, clip: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return client.post("/api/plan", json={"recipe": _recipe(effect), "inputs": {"clip": clip}}, headers=headers)


def _first_frame_mean(client: httpx.Client, cid: str, path: Path) -> np.ndarray:
    path.write_bytes(client.get(f"/cache/{cid}/raw").content)
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    mean: np.ndarray = frame.astype(int).mean(axis=(0, 1))
    return mean


def test_a_registered_name_is_the_cid_it_stands_for(stack: Stack, client: httpx.Client, tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    write_test_clip(clip, width=96, height=64, fps=10, duration_s=1.0, tone_hz=370.0)
    clip_cid = _store(client, "names-clip.mp4", clip.read_bytes())

    # Storing an effect names it: here the name given; the declared one (tint) when none is.
    added = client.post("/effects", json={"source": TINT, "name": "my-tint"})
    assert added.status_code == 201, added.text
    blue = added.json()["cid"]
    assert added.json()["names"] == ["my-tint"] and added.json()["name"] == "tint"
    assert client.get("/effects/my-tint").json()["cid"] == blue
    listed = {e["cid"]: e for e in client.get("/effects").json()["effects"]}
    assert "my-tint" in listed[blue]["names"]
    assert {"name": "my-tint", "cid": blue, "shared": False}.items() <= next(
        a for a in client.get("/assets").json()["assets"] if a["name"] == "my-tint"
    ).items(), "an effect's name is an asset name: listed and forgotten the same way"

    # By name or by CID: the same plan steps, and the plan records the CID.
    by_name, by_cid = _plan(client, "my-tint", clip_cid), _plan(client, blue, clip_cid)
    assert by_name.status_code == 200, by_name.text
    assert by_name.json()["plan"]["output_step"] == by_cid.json()["plan"]["output_step"]
    planned = json.dumps(by_name.json()["plan"])
    assert blue in planned and "my-tint" not in planned, "the plan has the CID, never the name"
    run = client.post("/runs", json={"recipe": _recipe("my-tint"), "inputs": {"clip": clip_cid}})
    assert run.status_code == 202, run.text
    done = wait_for(client, run.json()["run_id"])
    assert done["status"] == "completed", done
    assert np.abs(_first_frame_mean(client, done["output_cid"], tmp_path / "blue.mp4") - [0, 0, 255]).max() < 12

    # A new upload under the name moves it: the name now renders the new text.
    moved = client.post("/effects", json={"source": TINT_GREEN, "name": "my-tint"})
    assert moved.status_code == 201, moved.text
    green = moved.json()["cid"]
    assert green != blue and client.get("/effects/my-tint").json()["cid"] == green
    assert "my-tint" not in client.get(f"/effects/{blue}").json()["names"]
    again = _plan(client, "my-tint", clip_cid).json()["plan"]
    assert again["output_step"] == _plan(client, green, clip_cid).json()["plan"]["output_step"]
    assert again["output_step"] != by_cid.json()["plan"]["output_step"]
    run = client.post("/runs", json={"recipe": _recipe("my-tint"), "inputs": {"clip": clip_cid}})
    done = wait_for(client, run.json()["run_id"])
    assert np.abs(_first_frame_mean(client, done["output_cid"], tmp_path / "green.mp4") - [0, 255, 0]).max() < 12

    # A stored recipe keeps the name; each run resolves it for whoever runs it.
    stored = client.post("/recipes/upload", content=_recipe("my-tint"))
    assert stored.status_code == 201, stored.text
    assert "my-tint" in stored.json()["text"]
    from_stored = client.post(f"/recipes/{stored.json()['recipe_id']}/run", json={"inputs": {"clip": clip_cid}})
    assert from_stored.status_code == 202, from_stored.text
    from_stored_done = wait_for(client, from_stored.json()["run_id"])
    assert from_stored_done["output_cid"] == done["output_cid"]
    assert from_stored_done["recipe_id"] == stored.json()["recipe_id"]  # the run names the recipe it ran

    # Another user: the admin's private name is not theirs; a shared one is everyone's.
    bob = {"Authorization": f"Bearer {stack.token_for('names-bob')}"}
    # (The same bytes uploaded by bob: the same CID, now his to use too.)
    bob_clip = client.post("/cache/upload", files={"file": ("bob.mp4", clip.read_bytes())}, headers=bob)
    assert bob_clip.status_code == 201 and bob_clip.json()["cid"] == clip_cid, bob_clip.text
    refused = _plan(client, "my-tint", clip_cid, headers=bob)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["field"] == "steps[0].config.effect"
    assert "step 'fx'" in refused.json()["detail"] and "'my-tint'" in refused.json()["detail"]
    assert client.get("/effects/my-tint", headers=bob).status_code == 404
    assert client.post("/assets", json={"name": "shared-tint", "cid": blue, "shared": True}).status_code == 201
    shared = _plan(client, "shared-tint", clip_cid, headers=bob)
    assert shared.status_code == 200, shared.text
    assert shared.json()["plan"]["output_step"] == by_cid.json()["plan"]["output_step"]

    # Forgetting the name (as any asset name): the name no longer renders; the effect stays.
    assert client.delete("/assets/my-tint").status_code == 200
    gone = _plan(client, "my-tint", clip_cid)
    assert gone.status_code == 422 and "no effect named 'my-tint'" in gone.text, gone.text
    assert client.get(f"/effects/{green}").status_code == 200


def test_names_that_cannot_be_an_effects_are_refused(client: httpx.Client, tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    write_test_clip(clip, width=64, height=48, fps=10, duration_s=0.5, tone_hz=415.0)
    clip_cid = _store(client, "refused-clip.mp4", clip.read_bytes())
    # A built-in's name always means the built-in: no user effect may take it (and nothing is stored).
    taken = client.post("/effects", json={"source": TINT, "name": "blur"})
    assert taken.status_code == 422 and taken.json()["error"]["field"] == "name", taken.text
    invert = "(define-effect invert (- 255 frame))"
    declared = client.post("/effects", json={"source": invert})
    assert declared.status_code == 422 and declared.json()["error"]["field"] == "name", declared.text
    assert "built-in" in declared.json()["detail"]
    assert client.get(f"/cache/{cid_of_bytes(invert.encode())}").status_code == 404, "a refused effect is not stored"
    effect = client.post("/effects", json={"source": TINT, "name": "tint-ok"}).json()["cid"]
    assert client.post("/assets", json={"name": "pixelsort", "cid": effect}).status_code == 422, "an alias too"
    assert client.post("/effects", json={"source": TINT, "name": "two words"}).status_code == 422
    # A name nobody gave: the step and the field, and the built-in it may have meant.
    unknown = client.post("/runs", json={"recipe": _recipe("invrt"), "inputs": {"clip": clip_cid}})
    assert unknown.status_code == 422, unknown.text
    detail = unknown.json()["detail"]
    assert "step 'fx'" in detail and "no effect named 'invrt'" in detail and "did you mean 'invert'" in detail
    assert unknown.json()["error"]["field"] == "steps[0].config.effect"
    # A name of other content (an asset naming a video) is no effect.
    assert client.post("/assets", json={"name": "a-video", "cid": clip_cid}).status_code == 201
    other = client.post("/runs", json={"recipe": _recipe("a-video"), "inputs": {"clip": clip_cid}})
    assert other.status_code == 422 and "not of an effect's source" in other.text, other.text
    # Parameters are checked against the named effect's declarations, as by CID.
    bad = client.post(
        "/runs", json={"recipe": _recipe("tint-ok", "{color: [0, 0, 300]}"), "inputs": {"clip": clip_cid}}
    )
    assert bad.status_code == 422 and "params.color" in bad.text, bad.text


def test_naming_effects_from_the_command_line(stack: Stack, client: httpx.Client, tmp_path: Path) -> None:
    source = tmp_path / "tint.effect"
    source.write_text(TINT_GREEN)
    added = artdag(stack, "effect", "add", str(source), "--name", "cli-tint")
    cid, name = added.stdout.split()
    assert name == "cli-tint" and client.get("/effects/cli-tint").json()["cid"] == cid
    clip = tmp_path / "clip.mp4"
    write_test_clip(clip, width=64, height=48, fps=10, duration_s=0.5, tone_hz=740.0)
    out = tmp_path / "named.mp4"
    # The original's quick render names the effect as a recipe does.
    artdag(stack, "render", "--effect", "cli-tint", str(clip), "--sync", "-o", str(out))
    with av.open(str(out)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert np.abs(frame.astype(int).mean(axis=(0, 1)) - [0, 255, 0]).max() < 12
    assert artdag(stack, "asset", "rm", "cli-tint").stdout.startswith("forgot cli-tint")
    refused = artdag(stack, "effect", "add", str(source), "--name", "invert", check=False)
    assert refused.returncode != 0 and "built-in" in refused.stderr


HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def _preview(client: httpx.Client, effect: str, run_id: str, timeout_s: float = 60) -> str:
    """The preview fragment once its run is finished (the page asks for it again until then)."""
    deadline = time.monotonic() + timeout_s
    while True:
        fragment = client.get(f"/ui/effect/{effect}/preview/{run_id}").text
        status = re.search(r'data-status="(\w+)"', fragment)
        assert status is not None, fragment
        if status.group(1) in ("completed", "failed", "cancelled"):
            return fragment
        assert time.monotonic() < deadline, fragment
        time.sleep(0.2)


def test_the_effect_pages_over_http(client: httpx.Client, tmp_path: Path) -> None:
    listed = client.get("/effects", headers=HTML)
    assert listed.status_code == 200 and "<title>Effects · artdag</title>" in listed.text
    assert client.get("/effects").headers["content-type"] == "application/json", "programs still get JSON"
    effect = client.post("/effects", json={"source": TINT, "name": "http-tint"}).json()["cid"]
    page = client.get("/effect/http-tint", headers=HTML)
    assert page.status_code == 200 and effect in page.text and 'value="sample"' in page.text
    assert 'data-name="http-tint"' in page.text and 'data-param="color"' in page.text
    assert client.get("/effect/no-such-effect", headers=HTML).status_code == 404
    assert client.get("/effect/..%2Fetc", headers=HTML).status_code == 404

    # A preview on a video of the user's own: its first two seconds, through the effect.
    clip = tmp_path / "own.mp4"
    write_test_clip(clip, width=64, height=48, fps=10, duration_s=3.0, tone_hz=587.0)
    clip_cid = _store(client, "own.mp4", clip.read_bytes())
    started = client.post(f"/ui/effect/{effect}/preview", data={"clip": clip_cid, "param.color": "#ff0000"})
    assert started.status_code == 200, started.text
    run_id = re.search(r'data-run="([\w-]+)"', started.text)
    assert run_id is not None, started.text
    fragment = _preview(client, effect, run_id.group(1))
    output = re.search(r'<video id="preview-video"[^>]* data-cid="(\w+)"', fragment)
    assert output is not None, fragment
    path = tmp_path / "own-preview.mp4"
    path.write_bytes(client.get(f"/cache/{output.group(1)}/raw").content)
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 20 and np.abs(frames[0].astype(int).mean(axis=(0, 1)) - [255, 0, 0]).max() < 12
    # Wrong values say which parameter.
    wrong = client.post(f"/ui/effect/{effect}/preview", data={"clip": "sample", "param.color": "red"})
    assert wrong.status_code == 422 and "params.color" in wrong.text, wrong.text
    unchosen = client.post(f"/ui/effect/{effect}/preview", data={"param.color": "#ff0000"})
    assert unchosen.status_code == 422 and "clip" in unchosen.text
