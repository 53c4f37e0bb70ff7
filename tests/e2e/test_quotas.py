"""Per-user quotas (admins included): runs not finished (429) and stored bytes (413), each a JSON
answer naming its quota."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from artdag_cli.demo_media import write_test_clip
from tests.e2e.conftest import running_stack

pytestmark = pytest.mark.e2e

QUOTA_BYTES = 400_000


def _blur(radius: int) -> str:
    return (
        "name: slow-blur\ninputs: [video]\nsteps:\n"
        f"  - {{id: soft, type: EFFECT, inputs: [video], config: {{effect: blur, params: {{radius: {radius}}}}}}}\n"
        "output: soft\n"
    )


def _upload(http: httpx.Client, name: str, data: bytes) -> httpx.Response:
    return http.post("/cache/upload", files={"file": (name, data)})


def test_runs_not_finished_and_bytes_held_are_bounded_per_user(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    write_test_clip(clip, width=320, height=240, fps=25, duration_s=2.0)  # a second or so of blurring
    with (
        running_stack(
            tmp_path / "home",
            ARTDAG_QUOTA_QUEUED_RUNS="2",
            ARTDAG_QUOTA_BYTES=str(QUOTA_BYTES),
            ARTDAG_CHUNK_SECONDS="0",
        ) as stack,
        stack.http() as http,
    ):
        source = _upload(http, "clip.mp4", clip.read_bytes()).json()
        held = source["size"]
        assert held < QUOTA_BYTES

        # Two runs render one after the other; while they do, a third is refused.
        started = [http.post("/runs", json={"recipe": _blur(r), "inputs": {"video": source["cid"]}}) for r in (3, 4)]
        assert [s.status_code for s in started] == [202, 202], [s.text for s in started]
        refused = http.post("/runs", json={"recipe": _blur(5), "inputs": {"video": source["cid"]}})
        assert refused.status_code == 429, refused.text
        assert refused.headers["retry-after"]
        error = refused.json()["error"]
        assert error["field"] == "quota_queued_runs" and "ARTDAG_QUOTA_QUEUED_RUNS" in error["message"]
        for run in started:
            assert http.delete(f"/runs/{run.json()['run_id']}").status_code == 200

        # Bytes: an upload past the quota is refused before a byte is stored; one that fills it is taken.
        too_big = _upload(http, "big.bin", os.urandom(QUOTA_BYTES - held + 1))
        assert too_big.status_code == 413, too_big.text
        error = too_big.json()["error"]
        assert error["field"] == "quota_bytes" and "ARTDAG_QUOTA_BYTES" in error["message"]
        filling = _upload(http, "fill.bin", os.urandom(QUOTA_BYTES - held))
        assert filling.status_code == 201, filling.text
        assert _upload(http, "one-more.bin", b"x").status_code == 413
        full = http.post("/runs", json={"recipe": _blur(6), "inputs": {"video": source["cid"]}})
        assert full.status_code == 413 and "ARTDAG_QUOTA_BYTES" in full.json()["detail"], full.text

        # Another user has a quota of their own; deleting makes room again.
        other = {"Authorization": f"Bearer {stack.token_for('bob')}"}
        assert http.post("/cache/upload", files={"file": ("bob.bin", b"bob's")}, headers=other).status_code == 201
        assert http.delete(f"/cache/{filling.json()['cid']}").status_code in (200, 204)
        assert _upload(http, "one-more.bin", b"x").status_code == 201
