"""Python effects against `artdag up`: refused at submission unless an admin turned them on; turned on,
rendered in their sandbox like the built-in they copy, refused for an unapproved dependency, and
stopped at their time limit with nothing left running."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import numpy as np
import pytest

from artdag_cli.demo_media import write_test_clip
from tests.e2e.conftest import Stack, running_stack
from tests.e2e.test_planner_api import wait_for
from tests.e2e.test_user_effects import _recipe, _store
from tests.unit.test_effect_sandbox import BWRAP_PROBLEM, INVERT

pytestmark = pytest.mark.e2e

LOOP = b"""# artdag: python-effect
META = {"name": "loop"}

def process_frame(frame, params, state):
    while True:
        pass
"""
UNAPPROVED = b"""# artdag: python-effect
# /// script
# dependencies = ["numpy", "requests"]
# ///
META = {"name": "fetch"}

def process_frame(frame, params, state):
    return frame, state
"""


def _clip(client: httpx.Client, tmp_path: Path) -> str:
    clip = tmp_path / "clip.mp4"
    write_test_clip(clip, width=64, height=48, fps=10, duration_s=0.5, tone_hz=660.0)
    return _store(client, "clip.mp4", clip.read_bytes())


def _frames(client: httpx.Client, cid: str, path: Path) -> np.ndarray:
    path.write_bytes(client.get(f"/cache/{cid}/raw").content)
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def test_they_are_refused_at_submission_where_they_are_off(client: httpx.Client, tmp_path: Path) -> None:
    effect = _store(client, "invert.py", INVERT.encode())
    refused = client.post("/runs", json={"recipe": _recipe(effect), "inputs": {"clip": _clip(client, tmp_path)}})
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["field"] == "effect"
    assert "Python effects are off on this server" in refused.json()["detail"]
    # The upload route says so too, and stores nothing.
    upload = client.post("/effects", json={"source": INVERT, "name": "py-invert-off"})
    assert upload.status_code == 422, upload.text
    assert upload.json()["error"]["field"] == "source" and "Python effects are off" in upload.json()["detail"]
    assert client.get("/effects/py-invert-off").status_code == 404


@pytest.fixture(scope="module")
def python_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if BWRAP_PROBLEM is not None:
        pytest.skip(BWRAP_PROBLEM)
    home = tmp_path_factory.mktemp("python-effects-home")
    with running_stack(home, ARTDAG_PYTHON_EFFECTS="1", ARTDAG_PYTHON_EFFECT_WALL_S="3") as stack:
        yield stack


@pytest.fixture(scope="module")
def python_client(python_stack: Stack) -> Iterator[httpx.Client]:
    with python_stack.http() as http:
        yield http


def _bwrap_below(stack: Stack) -> list[int]:
    found = []
    for pid in stack.descendants():
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "bwrap":
                found.append(pid)
        except OSError:
            pass
    return found


def test_turned_on_they_render_in_the_sandbox(python_client: httpx.Client, tmp_path: Path) -> None:
    clip = _clip(python_client, tmp_path)
    effect = _store(python_client, "invert.py", INVERT.encode())
    outputs: list[np.ndarray] = []
    for name in (effect, "invert"):
        run = python_client.post("/runs", json={"recipe": _recipe(name), "inputs": {"clip": clip}})
        assert run.status_code == 202, run.text
        done = wait_for(python_client, run.json()["run_id"])
        assert done["status"] == "completed", done
        outputs.append(_frames(python_client, done["output_cid"], tmp_path / f"{len(outputs)}.mp4"))
    assert outputs[0].shape == outputs[1].shape and np.abs(outputs[0].astype(int) - outputs[1]).max() <= 2
    # Stored through the effects route and named: described from its header, rendered by its name.
    posted = python_client.post("/effects", json={"source": INVERT, "name": "py-invert"})
    assert posted.status_code == 201, posted.text
    assert posted.json()["cid"] == effect and posted.json()["name"] == "invert"
    assert [p["name"] for p in posted.json()["params"]] == ["intensity"]
    assert posted.json()["params"][0]["max"] == 1
    builtin = python_client.post("/effects", json={"source": INVERT})  # its declared name is a built-in's
    assert builtin.status_code == 422 and builtin.json()["error"]["field"] == "name", builtin.text
    shown = python_client.get("/effects/py-invert")
    assert shown.status_code == 200 and shown.json()["source"] == INVERT, shown.text
    by_name = python_client.post("/runs", json={"recipe": _recipe("py-invert"), "inputs": {"clip": clip}})
    assert by_name.status_code == 202, by_name.text
    named_frames = _frames(
        python_client, wait_for(python_client, by_name.json()["run_id"])["output_cid"], tmp_path / "n.mp4"
    )
    assert np.array_equal(named_frames, outputs[0])
    bad = python_client.post(
        "/runs", json={"recipe": _recipe(_store(python_client, "fetch.py", UNAPPROVED)), "inputs": {"clip": clip}}
    )
    assert bad.status_code == 422 and "dependency 'requests' is not on this server's approved list" in bad.text


def test_an_effect_that_never_answers_fails_its_run_and_leaves_nothing(
    python_stack: Stack, python_client: httpx.Client, tmp_path: Path
) -> None:
    clip = _clip(python_client, tmp_path)
    effect = _store(python_client, "loop.py", LOOP)
    run = python_client.post("/runs", json={"recipe": _recipe(effect), "inputs": {"clip": clip}})
    assert run.status_code == 202, run.text
    failed = wait_for(python_client, run.json()["run_id"])
    assert failed["status"] == "failed", failed
    assert "Python effect 'loop'" in failed["error"] and "took longer than 3 s" in failed["error"], failed
    deadline = time.monotonic() + 5
    while _bwrap_below(python_stack) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _bwrap_below(python_stack) == [], "the sandbox ended with its step"
