"""End to end on the shared stack: content metadata, provenance, deletion rules, import, IPFS and storage routes."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest

from artdag_cli.demo_media import write_click_track, write_test_clip
from artdag_common.cid import cid_of_bytes
from artdag_common.examples import example_path
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

RECIPE = example_path("resize").read_text()


def upload(client: httpx.Client, data: bytes, name: str) -> dict[str, Any]:
    response = client.post("/cache/upload", files={"file": (name, data, "application/octet-stream")})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_until(client: httpx.Client, path: str, key: str, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        body: dict[str, Any] = client.get(path).json()
        if body.get(key) not in (None, "pending", "running"):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.1)


def test_a_run_protects_its_content_and_gets_provenance(client: httpx.Client, tmp_path: Path) -> None:
    clip = tmp_path / "cache-e2e.mp4"
    write_test_clip(clip, width=192, height=108, fps=10, duration_s=1.0)
    source = upload(client, clip.read_bytes(), "cache-e2e.mp4")
    orphan = upload(client, os.urandom(1000), "noise.bin")

    started = client.post("/runs", json={"recipe": RECIPE, "inputs": {"video": source["cid"]}})
    assert started.status_code == 202, started.text
    run = wait_until(client, f"/runs/{started.json()['run_id']}", "status")
    assert run["status"] == "completed", run
    meta = wait_until(client, f"/cache/{run['output_cid']}/meta", "provenance_cid")

    provenance = client.get(f"/cache/{meta['provenance_cid']}/raw").json()
    assert provenance["run_id"] == run["run_id"]
    assert provenance["output"]["cid"] == run["output_cid"]
    assert provenance["inputs"] == [{"name": "video", "cid": source["cid"]}]
    assert provenance["recipe_cid"] == run["recipe_id"] and provenance["plan_id"] == run["plan_id"]
    assert provenance["plan_cid"] == run["plan_cid"] is not None
    assert provenance["infrastructure"]["software"]["name"] == "infra:artdag"
    assert client.get(f"/cache/{provenance['infrastructure']['hardware']['cid']}/raw").json()["type"] == "hardware"

    for cid, reason in ((source["cid"], "an input of run"), (run["output_cid"], "the output of run")):
        refused = client.delete(f"/cache/{cid}")
        assert refused.status_code == 409 and reason in refused.json()["detail"], refused.text
    assert client.delete(f"/cache/{orphan['cid']}").status_code == 200
    assert client.get(f"/cache/{orphan['cid']}/raw").status_code == 404
    assert client.get(f"/cache/{source['cid']}/raw").status_code == 200


def test_content_page_meta_and_media(client: httpx.Client) -> None:
    data = b"\x89PNG\r\n\x1a\n" + os.urandom(200)
    image = upload(client, data, "pixel.png")
    page = client.get(f"/cache/{image['cid']}", headers={"Accept": "text/html"})
    assert page.status_code == 200 and f'src="/cache/{image["cid"]}/raw"' in page.text
    assert client.get(f"/cache/{image['cid']}").json()["cid"] == image["cid"]

    patched = client.patch(f"/cache/{image['cid']}/meta", json={"description": "one pixel", "tags": ["e2e"]})
    assert patched.status_code == 200 and patched.json()["tags"] == ["e2e"]
    assert client.patch(f"/cache/{image['cid']}/meta", json={"tags": ["<script>"]}).status_code == 422
    images = client.get("/media", params={"type": "image"}).json()
    assert image["cid"] in [i["cid"] for i in images["items"]]
    assert all(i["media_type"].startswith("image/") for i in images["items"])

    assert client.patch(f"/cache/{image['cid']}/meta", json={"pinned": True}).status_code == 200
    assert client.delete(f"/cache/{image['cid']}").status_code == 409
    assert client.delete(f"/cache/{cid_of_bytes(b'never stored anywhere')}").status_code == 404


def test_import_is_off_without_import_dirs(client: httpx.Client, stack: Stack) -> None:
    (stack.home / "file.bin").write_bytes(b"x")
    refused = client.post("/cache/import", params={"path": str(stack.home / "file.bin")})
    assert refused.status_code == 403 and "IMPORT_DIRS" in refused.json()["detail"]


def test_ipfs_routes(client: httpx.Client) -> None:
    cid = cid_of_bytes(b"hello ipfs")
    redirect = client.get(f"/ipfs/{cid}", follow_redirects=False)
    assert redirect.status_code == 302 and redirect.headers["location"] == f"https://ipfs.io/ipfs/{cid}"
    assert client.get(f"/ipfs/{cid}/raw").status_code == 404


def test_storage_providers(client: httpx.Client, stack: Stack) -> None:
    target = stack.home / "providers" / "disk"  # local providers live under ARTDAG_PROVIDER_LOCAL_ROOTS
    target.mkdir(parents=True, exist_ok=True)
    added = client.post("/storage/add", json={"name": "e2e disk", "type": "local", "config": {"path": str(target)}})
    assert added.status_code == 201, added.text
    provider_id = added.json()["id"]
    tested = client.post(f"/storage/{provider_id}/test").json()
    assert tested["ok"] is True, tested
    secret = client.post("/storage", data={"name": "nats", "type": "nats", "url": stack.nats_url, "token": "hunter2"})
    assert secret.status_code == 201, secret.text
    assert secret.json()["config"]["token"] == "********"
    assert "hunter2" not in client.get("/storage").text
    assert client.get("/storage/type/nats").json()["type"] == "nats"
    assert client.delete(f"/storage/{provider_id}").status_code == 200
    assert client.get(f"/storage/{provider_id}").status_code == 404


def _mpeg4_mkv(path: Path) -> None:
    """A short MPEG-4 Part 2 video in Matroska: something browsers will not play."""
    with av.open(str(path), "w", format="matroska") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for i in range(25):
            frame = av.VideoFrame.from_ndarray(np.full((120, 160, 3), (i * 9) % 256, dtype=np.uint8), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame.reformat(format="yuv420p")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def test_browser_mp4_and_thumbnails_are_made_once(client: httpx.Client, tmp_path: Path) -> None:
    source = tmp_path / "old.mkv"
    _mpeg4_mkv(source)
    with source.open("rb") as handle:
        cid = client.post("/cache/upload", files={"file": ("old.mkv", handle)}).json()["cid"]
    # Served in place (whoever may see the source may see what is made of it), named by its own cid.
    first = client.get(f"/cache/{cid}/mp4")
    assert first.status_code == 200, first.text
    made = first.headers["etag"].strip('"')
    assert made != cid and first.headers["content-type"] == "video/mp4"
    converted = tmp_path / "converted.mp4"
    converted.write_bytes(first.content)
    with av.open(str(converted)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert sum(1 for _ in container.decode(video=0)) == 25
    again = client.get(f"/cache/{cid}/mp4", headers={"Range": "bytes=0-99"})
    assert again.status_code == 206 and again.content == first.content[:100]
    assert again.headers["etag"] == first.headers["etag"], "made once: the second request finds the same file"

    still = client.get(f"/cache/{cid}/thumbnail", follow_redirects=True)
    assert still.status_code == 200 and still.content.startswith(b"\x89PNG")
    listed = client.get("/media", params={"type": "video", "limit": 200}).json()["items"]
    assert any(item["cid"] == cid and item["thumbnail"] == f"/cache/{cid}/thumbnail" for item in listed)

    wav = tmp_path / "tone.wav"
    write_click_track(wav, bpm=60, duration_s=1.0)
    with wav.open("rb") as handle:
        audio = client.post("/cache/upload", files={"file": ("tone.wav", handle)}).json()["cid"]
    refused = client.get(f"/cache/{audio}/mp4")
    assert refused.status_code == 422 and "not a video" in refused.json()["detail"]
