"""Starting and stopping the embedded stack the way a person at a terminal does."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from artdag_common.nats_server import free_port
from tests.e2e.conftest import CLI, alive, clean_env, descendants

pytestmark = pytest.mark.e2e


def test_ctrl_c_stops_everything_within_ten_seconds(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(CLI), "up", "--home", str(tmp_path / "home"), "--port", str(port)],
            env=clean_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        family = descendants(proc.pid)
        assert len(family) >= 7, "nats-server and six services"
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
        assert time.monotonic() - started < 10
        time.sleep(0.2)
        assert [pid for pid in family if alive(pid)] == []
        assert _processes_of(tmp_path / "home") == []
        text = log.read_text()
        assert "stopped" in text
        assert "disconnected from nats" not in text, "a clean stop is quiet"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_taken_port_is_a_clear_error_not_a_hang(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        result = subprocess.run(
            [str(CLI), "up", "--home", str(tmp_path / "home"), "--port", str(port)],
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=90,
        )
    assert result.returncode == 1
    assert "service gateway exited" in result.stderr
    time.sleep(0.2)
    assert _processes_of(tmp_path / "home") == []


def _processes_of(home: Path) -> list[int]:
    """Live processes started for the stack at `home` (found by their environment)."""
    marker = f"ARTDAG_HOME={home}".encode()
    found = []
    for env in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker in env.read_bytes().split(b"\0") and alive(int(env.parent.name)):
                found.append(int(env.parent.name))
        except OSError:
            continue
    return found
