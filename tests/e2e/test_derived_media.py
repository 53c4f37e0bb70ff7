"""Thumbnails and browser MP4s are made once per cid, by a signed-in request, never by an anonymous one."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from artdag_cli.demo_media import write_test_clip
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e


def _publish(stack: Stack, cid: str) -> None:
    """Mark content published, as a publication to L2 would (this stack has no L2): anonymous may see it."""
    with sqlite3.connect(stack.home / "artdag.db") as db:
        assert db.execute("UPDATE content SET published = 1 WHERE cid = ?", (cid,)).rowcount == 1


def _runs(client: httpx.Client) -> int:
    total: int = client.get("/runs", params={"limit": 1}).json()["total"]
    return total


def test_anonymous_requests_make_nothing_and_concurrent_ones_make_one(
    stack: Stack, client: httpx.Client, tmp_path: Path
) -> None:
    clip = tmp_path / "derived.mp4"
    write_test_clip(clip, width=96, height=64, fps=10, duration_s=1.5, tone_hz=612.0)
    cid = client.post("/cache/upload", files={"file": ("derived.mp4", clip.read_bytes())}).json()["cid"]
    _publish(stack, cid)
    before = _runs(client)
    thumbnail = f"/cache/{cid}/thumbnail"

    with httpx.Client(base_url=stack.url, timeout=30) as anonymous, ThreadPoolExecutor(16) as pool:
        assert anonymous.get(f"/cache/{cid}/meta").status_code == 200, "published: anonymous may see it"
        answers = list(pool.map(lambda _: anonymous.get(thumbnail), range(150)))
        assert {a.status_code for a in answers} == {404}, answers[0].text
        assert "no thumbnail" in answers[0].json()["detail"]
        # A browser MP4 not made yet: the original instead (this one plays as it is anyway).
        assert anonymous.get(f"/cache/{cid}/mp4").status_code == 302
        assert _runs(client) == before, "anonymous requests started runs"

        made = list(pool.map(lambda _: client.get(thumbnail), range(8)))
        assert {m.status_code for m in made} == {200}, [m.text for m in made if m.status_code != 200]
        assert all(m.content.startswith(b"\x89PNG") for m in made)
        assert len({m.headers["etag"] for m in made}) == 1, "one thumbnail, served from its stored cid"
        assert _runs(client) == before + 1, "eight requests at once made one run"

        served = list(pool.map(lambda _: anonymous.get(thumbnail), range(20)))
        assert {s.status_code for s in served} == {200}
        assert {s.headers["etag"] for s in served} == {made[0].headers["etag"]}
    assert _runs(client) == before + 1
