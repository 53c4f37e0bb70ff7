"""Named assets over HTTP and the CLI against `artdag up`: a user's names, an admin's shared ones,
`SOURCE {asset: NAME}` in recipes and `artdag render --effect E NAME`, with step ids from the CID."""

from __future__ import annotations

import json
from pathlib import Path

import av
import httpx
import pytest

from artdag_cli.demo_media import write_test_clip
from tests.e2e.conftest import Stack
from tests.e2e.test_cli import artdag
from tests.e2e.test_planner_api import wait_for

pytestmark = pytest.mark.e2e

BY_ASSET = """
name: asset-invert
steps:
  - {id: clip, type: SOURCE, config: {asset: ASSET}}
  - {id: fx, type: EFFECT, inputs: [clip], config: {effect: invert}}
output: fx
"""
BY_INPUT = """
name: input-invert
inputs: [clip]
steps:
  - {id: fx, type: EFFECT, inputs: [clip], config: {effect: invert}}
output: fx
"""


def test_assets_name_content_for_recipes_and_quick_renders(stack: Stack, client: httpx.Client, tmp_path: Path) -> None:
    clip = tmp_path / "cat.mp4"
    write_test_clip(clip, width=160, height=96, fps=12, duration_s=1.0, tone_hz=523.0)
    with clip.open("rb") as handle:
        cid = client.post("/cache/upload", files={"file": ("cat.mp4", handle)}).json()["cid"]

    named = client.post("/assets", json={"name": "cat", "cid": cid})
    assert named.status_code == 201, named.text
    assert {"name": "cat", "cid": cid, "shared": False}.items() <= named.json().items()
    assert "cat" in [a["name"] for a in client.get("/assets").json()["assets"]]
    page = client.get("/media", headers={"accept": "text/html"})
    assert page.status_code == 200 and 'data-asset="cat"' in page.text and cid in page.text

    # A recipe names the asset; the plan is the one the CID gives: same output step, same cache.
    by_asset = client.post("/api/plan", json={"recipe": BY_ASSET.replace("ASSET", "cat"), "inputs": {}})
    assert by_asset.status_code == 200, by_asset.text
    by_input = client.post("/api/plan", json={"recipe": BY_INPUT, "inputs": {"clip": cid}}).json()
    assert by_asset.json()["plan"]["output_step"] == by_input["plan"]["output_step"]
    assert by_asset.json()["plan"]["input_cids"] == {"clip": cid}
    run = client.post("/runs", json={"recipe": BY_ASSET.replace("ASSET", "cat"), "inputs": {}})
    assert run.status_code == 202, run.text
    assert wait_for(client, run.json()["run_id"])["status"] == "completed"

    # Another user has no `cat` of theirs; an admin's shared name is everyone's.
    bob = {"Authorization": f"Bearer {stack.token_for('asset-bob')}"}
    refused = client.post("/runs", json={"recipe": BY_ASSET.replace("ASSET", "cat"), "inputs": {}}, headers=bob)
    assert refused.status_code == 422 and "inputs.clip" in refused.text and "'cat'" in refused.text
    assert client.post("/assets", json={"name": "dog", "cid": cid, "shared": True}).status_code == 201
    shared_run = client.post("/runs", json={"recipe": BY_ASSET.replace("ASSET", "dog"), "inputs": {}}, headers=bob)
    assert shared_run.status_code == 202, shared_run.text
    assert wait_for(client, shared_run.json()["run_id"])["status"] == "completed"
    # A plain user cannot name shared assets, nor name content they cannot see.
    assert client.post("/assets", json={"name": "x", "cid": cid, "shared": True}, headers=bob).status_code == 403
    private = client.post("/cache/upload", files={"file": ("private.bin", b"the admin's own bytes")}).json()["cid"]
    assert client.post("/assets", json={"name": "mine", "cid": private}, headers=bob).status_code == 404
    bad = client.post("/assets", json={"name": "two words", "cid": cid})
    assert bad.status_code == 422 and "name" in bad.text

    # The CLI: name a file, list, the original quick render (`render.py dog cat --sync`), forget.
    kitten = tmp_path / "kitten.mp4"
    write_test_clip(kitten, width=128, height=64, fps=12, duration_s=1.0, tone_hz=659.0)
    added = artdag(stack, "asset", "add", "kitten", str(kitten))
    assert added.stdout.startswith("kitten  Qm")
    listed = json.loads(artdag(stack, "assets", "--json").stdout)
    assert {a["name"] for a in listed} >= {"cat", "dog", "kitten"}
    out = tmp_path / "inverted.mp4"
    artdag(stack, "render", "--effect", "invert", "kitten", "--sync", "-o", str(out))
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.width == 128
    assert "forgot kitten" in artdag(stack, "asset", "rm", "kitten").stdout
    gone = artdag(stack, "render", "--effect", "invert", "kitten", "--sync", check=False)
    assert gone.returncode != 0 and "no file, CID or asset name" in gone.stderr
    assert client.delete("/assets/kitten").status_code == 404
    assert client.delete("/assets/dog", params={"shared": "true"}).status_code == 200
