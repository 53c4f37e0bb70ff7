"""Below the free-space reserve (ARTDAG_MIN_FREE_BYTES) new work is refused with a 507 that says why,
while reading and deleting still work; /health says the disk is short."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from artdag_cli.demo_media import write_test_clip
from tests.e2e.conftest import running_stack

pytestmark = pytest.mark.e2e

RECIPE = "steps:\n  - {id: a, type: NOOP, inputs: [], config: {n: 5151}}\noutput: a\n"


def test_below_the_reserve_uploads_and_runs_are_refused_and_deletion_still_works(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    write_test_clip(clip, width=160, height=120, fps=25, duration_s=1.0)
    # A reserve just above what the disk has free: the disk is "full" for artdag.
    reserve = shutil.disk_usage(tmp_path).free + 2**30
    with running_stack(tmp_path / "home", ARTDAG_MIN_FREE_BYTES=str(reserve)) as st, st.http() as http:
        health = http.get("/health")
        assert health.status_code == 200, "degraded, not down: reading and deleting go on"
        assert health.json()["degraded"] == ["disk"]
        disk = health.json()["disk"]
        assert disk["ok"] is False and disk["reserve_bytes"] == reserve and disk["free_bytes"] < reserve

        with clip.open("rb") as handle:
            refused = http.post("/cache/upload", files={"file": ("clip.mp4", handle)})
        assert refused.status_code == 507, refused.text
        error = refused.json()["error"]
        assert error["code"] == "insufficient_storage" and error["field"] == "disk"
        assert "ARTDAG_MIN_FREE_BYTES" in error["message"]
        run = http.post("/runs", json={"recipe": RECIPE})
        assert run.status_code == 507, run.text
        assert http.get("/runs").status_code == 200, "reading goes on"

    # With room again (the same store), work is taken in, and content can be deleted.
    with running_stack(tmp_path / "home") as st, st.http() as http:
        assert http.get("/health").json()["degraded"] == []
        with clip.open("rb") as handle:
            cid = http.post("/cache/upload", files={"file": ("clip.mp4", handle)}).json()["cid"]
    with running_stack(tmp_path / "home", ARTDAG_MIN_FREE_BYTES=str(reserve)) as st, st.http() as http:
        deleted = http.delete(f"/cache/{cid}")
        assert deleted.status_code in (200, 204), deleted.text
        assert http.get(f"/cache/{cid}/meta").status_code == 404
