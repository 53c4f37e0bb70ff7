"""Starting `artdag up` exactly as a user does, for the end-to-end tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from artdag_common.bus_access import BusCredentials, BusLogin
from artdag_common.nats_server import free_port
from artdag_common.tokens import load_token

CLI = Path(sys.executable).parent / "artdag"


@dataclass
class Stack:
    url: str
    home: Path
    nats_url: str
    process: subprocess.Popen[bytes]
    log: Path

    def descendants(self) -> set[int]:
        return descendants(self.process.pid)

    @property
    def bus_admin(self) -> BusLogin:
        """The bus's admin login that `artdag up` made in `<home>/bus` (an operator's, for the tests)."""
        credentials = BusCredentials.load(self.home)
        assert credentials is not None, f"artdag up made no bus credentials in {self.home}"
        return credentials.admin

    @property
    def token(self) -> str:
        """The local user's token that `artdag up` made and saved as `<home>/token`."""
        token = load_token(self.home)
        assert token, f"artdag up saved no token in {self.home}"
        return token

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def http(self, timeout: float = 30) -> httpx.Client:
        """A client that authenticates as the local user, as the CLI does."""
        return httpx.Client(base_url=self.url, timeout=timeout, headers=self.headers)

    def token_for(self, user: str) -> str:
        """A new plain-user token for `user`, made the way an operator makes one (`artdag token create`)."""
        made = subprocess.run(
            [str(CLI), "token", "create", "--user", user, "--home", str(self.home)],
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert made.returncode == 0, made.stderr
        return made.stdout.strip()

    def cli_env(self) -> dict[str, str]:
        """The environment for running the CLI against this stack: it finds the token under ARTDAG_HOME."""
        return clean_env(ARTDAG_HOME=str(self.home))


def descendants(pid: int) -> set[int]:
    """Every live-or-zombie process below `pid`."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARTDAG_", "NATS_", "DATABASE_", "CACHE_"))}
    env.update(extra)
    return env


@contextmanager
def running_stack(home: Path, *args: str, log: Path | None = None, **env: str) -> Iterator[Stack]:
    """`artdag up` on a free port with its home at `home`; stopped with SIGTERM, checked to leave nothing.

    Its output goes to `log` (default `<home>/up.log`).
    """
    port = free_port()
    home.mkdir(parents=True, exist_ok=True)
    log = log or home / "up.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(CLI), "up", "--home", str(home), "--port", str(port), *args],
            env=clean_env(**env),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"artdag up exited early:\n{log.read_text()}"
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"stack not healthy:\n{log.read_text()}"
            time.sleep(0.2)
        if "--nats-url" in args:  # a bus of the test's own (a cluster, say)
            nats_url = args[args.index("--nats-url") + 1]
        else:
            match = re.search(r"nats-server \(JetStream\) on (nats://\S+),", log.read_text())
            assert match, log.read_text()
            nats_url = match.group(1)
        stack = Stack(url=url, home=home, nats_url=nats_url, process=process, log=log)
        yield stack
        family = stack.descendants()
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            pytest.fail(f"artdag up did not stop within 10 s:\n{log.read_text()[-3000:]}")
        assert time.monotonic() - started < 10
        time.sleep(0.2)
        assert [pid for pid in family if alive(pid)] == [], "processes left behind"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


UPLOAD_LIMIT = 8 * 1024 * 1024


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One embedded stack shared by the end-to-end tests that need nothing special."""
    home = tmp_path_factory.mktemp("home")
    with running_stack(home, ARTDAG_MAX_UPLOAD_BYTES=str(UPLOAD_LIMIT), ARTDAG_CHUNK_SECONDS="2") as running:
        yield running


@pytest.fixture(scope="session")
def client(stack: Stack) -> Iterator[httpx.Client]:
    with stack.http() as http:
        yield http
