"""A disk that really fills up (a small tmpfs under the stack's home, filled by something else):
new work is refused with 507, content can still be deleted, and once room is back JetStream
works again without anyone restarting the stack."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from artdag_cli.demo_media import write_test_clip
from artdag_common import subjects
from artdag_common.bus import connect
from artdag_common.bus_access import BusLogin
from tests.e2e.conftest import Stack, running_stack

pytestmark = pytest.mark.e2e

MIB = 2**20
RESERVE = 48 * MIB
RECIPE = """
name: shrink
inputs: [video]
steps:
  - {{id: small, type: RESIZE, inputs: [video], config: {{width: {width}, height: 96, mode: stretch}}}}
output: small
"""


@contextlib.contextmanager
def small_disk(mountpoint: Path, size_mib: int) -> Iterator[Path]:
    """A tmpfs of `size_mib` MiB at `mountpoint` (needs root; skipped without, failed in CI)."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (root is needed): {mounted.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        # The stack's log outlives the disk, for whoever reads a failure.
        for log in mountpoint.glob("*/up.log"):
            with contextlib.suppress(OSError):
                (mountpoint.parent / f"{log.parent.name}-up.log").write_bytes(log.read_bytes())
        # Lazily: a process of the stack that is still closing files must not keep it mounted.
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def fill(path: Path) -> int:
    """Write `path` until the disk has no byte left; returns how much was written."""
    written = 0
    with path.open("wb", buffering=0) as out:
        for chunk in (MIB, 4096, 1):
            block = b"\0" * chunk
            while True:
                try:
                    written += out.write(block) or 0
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    break
    return written


def run_to_end(http: httpx.Client, run_id: str, timeout_s: float = 90.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    while True:
        answer = http.get(f"/runs/{run_id}")
        if answer.status_code == 200 and answer.json()["status"] in ("completed", "failed", "cancelled"):
            run: dict[str, object] = answer.json()
            return run
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.3)


async def _publish_to_a_stream(nats_url: str, login: BusLogin) -> Exception | None:
    """A write JetStream must make now: on a full disk it cannot."""
    nc = await connect(nats_url, "pytest-disk-full", login=login)
    try:
        # Bigger than a page: a few bytes may still fit in the last page of a stream's block file.
        for _ in range(4):
            await nc.jetstream().publish(subjects.run_event("run-disk-probe", "probe"), b"0" * 65536, timeout=3)
        return None
    except Exception as exc:  # noqa: BLE001 - what the bus answers is the finding
        return exc
    finally:
        await nc.close()


def wait_for_log(st: Stack, text: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in st.log.read_text():
        assert time.monotonic() < deadline, f"no {text!r} in the log:\n{st.log.read_text()[-3000:]}"
        time.sleep(0.2)


def test_a_full_disk_refuses_new_work_frees_by_deletion_and_heals_when_room_returns(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    write_test_clip(clip, width=320, height=240, fps=25, duration_s=2.0)
    with (
        small_disk(tmp_path / "disk", 320) as disk,
        # The launcher's output is what the test reads: kept off the disk it fills.
        running_stack(disk / "home", log=tmp_path / "up.log", ARTDAG_MIN_FREE_BYTES=str(RESERVE)) as st,
        st.http(timeout=30) as http,
    ):
        limit = int(st.log.read_text().split("(at most ")[1].split(" MiB")[0])
        assert 64 <= limit < 320 - RESERVE // MIB, "JetStream's store is bounded below the disk's free space"
        with clip.open("rb") as handle:
            source = http.post("/cache/upload", files={"file": ("clip.mp4", handle)}).json()["cid"]
        before = run_to_end(
            http,
            http.post("/runs", json={"recipe": RECIPE.format(width=128), "inputs": {"video": source}}).json()["run_id"],
        )
        assert before["status"] == "completed", before

        spare = http.post("/cache/upload", files={"file": ("notes.bin", b"spare " * 200_000)}).json()["cid"]

        # Something else fills the disk to the last byte.
        filler = disk / "filler"
        assert fill(filler) > 100 * MIB
        with clip.open("rb") as handle:
            upload = http.post("/cache/upload", files={"file": ("again.mp4", handle)})
        assert upload.status_code == 507, upload.text
        assert upload.json()["error"]["field"] == "disk"
        run = http.post("/runs", json={"recipe": RECIPE.format(width=112), "inputs": {"video": source}})
        assert run.status_code == 507, run.text
        health = http.get("/health")
        assert health.status_code == 200 and health.json()["degraded"] == ["disk"], health.text

        # JetStream cannot write either: it is told to, and says so; the launcher waits for room.
        assert asyncio.run(_publish_to_a_stream(st.nats_url, st.bus_admin)) is not None
        wait_for_log(st, "JetStream cannot write", 15)

        # Content is deleted on the full disk (this is how room is made through the API).
        deleted = http.delete(f"/cache/{spare}")
        assert deleted.status_code in (200, 204), deleted.text
        assert http.get(f"/cache/{spare}/meta").status_code == 404

        # Room comes back: JetStream is restarted by itself, and new work goes through.
        filler.unlink()
        wait_for_log(st, "the disk has room again: restarting nats-server", 20)
        deadline = time.monotonic() + 60
        while (
            run := http.post("/runs", json={"recipe": RECIPE.format(width=112), "inputs": {"video": source}})
        ).status_code == 503:
            assert time.monotonic() < deadline, run.text
            time.sleep(0.5)
        assert run.status_code in (200, 202), run.text
        after = run_to_end(http, run.json()["run_id"])
        assert after["status"] == "completed", after
        assert asyncio.run(_publish_to_a_stream(st.nats_url, st.bus_admin)) is None
