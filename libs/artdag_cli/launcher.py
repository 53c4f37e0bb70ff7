"""`artdag up`: a real nats-server and every service as its own process, on one machine."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from artdag_common.bus_access import BusCredentials
from artdag_common.db import migrate
from artdag_common.disk import free_bytes
from artdag_common.nats_server import EmbeddedNatsServer, die_with_parent
from artdag_common.settings import CommonSettings
from artdag_common.tokens import issue_local_token, load_token, local_token_valid, local_user, save_token, token_path

# Start order: what others call first comes up first; the gateway last.
SERVICES = ("cache", "auth", "analyzer", "planner", "executor", "gateway")
STOP_GRACE_S = 7.0
MAX_RESTARTS = 5
# While starting: a service that will not start (a taken port, bad settings) is reported sooner.
STARTUP_RESTARTS = 1
RESTART_WINDOW_S = 60.0
NATS_LABEL = "nats-server"
JETSTREAM_CHECK_S = 2.0
# Room the disk must have before a JetStream that could not write is restarted (when the reserve is off).
JETSTREAM_MIN_ROOM = 16 * 2**20
MIB = 2**20


def jetstream_store_limit(settings: CommonSettings, store: Path) -> int:
    """The embedded JetStream's store limit: the setting, or half the free space beyond the reserve."""
    if settings.nats.store_bytes:
        return settings.nats.store_bytes
    spare = free_bytes(store) - settings.min_free_bytes
    return min(8192 * MIB, max(64 * MIB, spare // 2))


def say(message: str) -> None:
    # A full disk under a redirected log must not take the supervisor (and with it the stack) down.
    with contextlib.suppress(OSError):
        print(f"artdag: {message}", file=sys.stderr, flush=True)


class Stack:
    """The processes of one embedded stack, started and stopped together."""

    def __init__(
        self,
        home: Path,
        host: str,
        port: int,
        nats_url: str | None,
        env: dict[str, str],
        replicas: dict[str, int] | None = None,
    ) -> None:
        self.home = home
        self.host = host
        self.port = port
        self.env = dict(env)
        self.env["ARTDAG_HOME"] = str(home)
        self.env["PORT"] = str(port)
        self.env["HOST"] = host
        self.env.setdefault("ARTDAG_PUBLIC_URL", f"http://{host}:{port}")
        self.env.setdefault("PYTHONUNBUFFERED", "1")
        # One probe port per process: every child of one stack binding the same one would fail (it is for pods).
        self.env.pop("ARTDAG_PROBE_PORT", None)
        self.nats: EmbeddedNatsServer | None = None
        self.nats_url = nats_url
        # Processes per service (one unless said otherwise).
        self.replicas = dict(replicas or {})
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.modules: dict[str, str] = {}
        self.restarts: dict[str, list[float]] = {}
        self.reserve = 0
        self._next_jetstream_check = 0.0
        self._jetstream_fault: str | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 60.0) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        database = CommonSettings(
            home=self.home, database_url=self.env.get("ARTDAG_DATABASE_URL") or self.env.get("DATABASE_URL")
        )
        self.reserve = database.min_free_bytes
        if self.nats_url is None:
            store = self.home / "nats"
            limit = jetstream_store_limit(database, store)
            # The embedded bus is never open: every service finds a login of its own in the home
            # it shares (`bus_access.home_login`); a login set for the launcher would override them.
            credentials = BusCredentials.ensure(self.home)
            for variable in ("ARTDAG_NATS_USER", "ARTDAG_NATS_PASSWORD"):
                self.env.pop(variable, None)
            self.nats = EmbeddedNatsServer(
                store,
                log_file=self.home / "nats-server.log",
                max_store_bytes=limit,
                credentials=credentials,
                object_bucket=database.store.nats_object_bucket,
            )
            self.nats.start()
            self.nats_url = self.nats.url
            say(
                f"nats-server (JetStream) on {self.nats_url}, store {store} (at most {limit // 2**20} MiB),"
                f" a login per service in {BusCredentials.path(self.home)}"
            )
        # A bus of the operator's: the services' logins from ARTDAG_HOME when they were made there
        # (its server configured with `artdag bus-config`), else whatever ARTDAG_NATS_USER says.
        self.env["ARTDAG_NATS_URL"] = self.nats_url
        asyncio.run(migrate(database.effective_database_url))
        self.ensure_local_token(database)
        for name in SERVICES:
            replicas = self.replicas.get(name, 1)
            for replica in range(1, replicas + 1):
                label = f"{name}-{replica}" if replicas > 1 else name
                self.children[label] = self._spawn(name)
                self.modules[label] = name
        self.wait_healthy(timeout_s)

    def ensure_local_token(self, settings: CommonSettings) -> None:
        """Local mode: make sure `<home>/token` holds a valid admin token for the local user (mode 0600)."""
        l2 = self.env.get("ARTDAG_L2_SERVER") or self.env.get("L2_SERVER")
        if l2:
            say(f"L2 mode: tokens come from {l2}")
            return
        url = settings.effective_database_url
        saved = load_token(self.home)
        if saved is not None and asyncio.run(local_token_valid(url, saved)):
            return
        user = local_user()
        token = asyncio.run(issue_local_token(url, user, roles=["admin"], ttl_s=settings.auth.token_ttl_days * 86_400))
        path = save_token(self.home, token)
        say(f"made a token for local user {user!r} (admin), saved in {path} (mode 0600); the CLI sends it")

    def _spawn(self, service: str) -> subprocess.Popen[bytes]:
        # Own session: Ctrl-C reaches only the launcher, which stops the services in order.
        return subprocess.Popen(
            [sys.executable, "-m", f"services.{service}"],
            env=self.env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )

    def wait_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        last = "no answer"
        while time.monotonic() < deadline:
            # A service that dies now is restarted like later on (one that keeps dying ends the start):
            # whoever else watches /health may see the stack up, and act on it, before this loop does.
            self.supervise(max_restarts=STARTUP_RESTARTS)
            try:
                response = httpx.get(f"{self.base_url}/health", timeout=2.0)
                if response.status_code == 200:
                    return
                body = response.json()
                down = [name for name, s in body.get("services", {}).items() if not s.get("ok")]
                last = f"waiting for {', '.join(down) or 'the bus'}"
            except httpx.HTTPError as exc:
                last = str(exc) or type(exc).__name__
            time.sleep(0.25)
        raise TimeoutError(f"the stack did not become healthy within {timeout_s:g} s ({last})")

    def supervise(self, max_restarts: int = MAX_RESTARTS) -> None:
        """Restart a process that died (a crash must not take the stack down); give up if it keeps dying.

        The embedded nats-server first: it comes back on the same port with the same store, so the
        services reconnect to it (their clients keep trying) and JetStream still holds every task.
        """
        if self.nats is not None and (code := self.nats.exit_code()) is not None:
            self._count_restart(NATS_LABEL, code, max_restarts)
            say(f"nats-server exited with code {code}; restarting it on {self.nats.url} with its store")
            self.nats.restart()
        self._heal_jetstream(max_restarts)
        for label, proc in list(self.children.items()):
            code = proc.poll()
            if code is None:
                continue
            self._count_restart(label, code, max_restarts)
            say(f"service {label} exited with code {code}; restarting it")
            self.children[label] = self._spawn(self.modules[label])

    def _heal_jetstream(self, max_restarts: int) -> None:
        """Restart the embedded nats-server once JetStream has met a write error and the disk has room again.

        A stream that could not write (a disk filled by something else) stays broken until its
        server restarts; restarted, JetStream recovers the stream from what it had written.
        """
        now = time.monotonic()
        if self.nats is None or now < self._next_jetstream_check:
            return
        self._next_jetstream_check = now + JETSTREAM_CHECK_S
        fault = self.nats.jetstream_fault()
        if fault is None or "write error" not in fault:
            self._jetstream_fault = None
            return  # well, or something a restart would not mend (a stream catching up, say)
        free = free_bytes(self.nats.store_dir)
        if free < max(self.reserve, JETSTREAM_MIN_ROOM):
            if self._jetstream_fault != fault:
                say(f"JetStream cannot write ({fault}); it is restarted once {self.nats.store_dir} has room")
                self._jetstream_fault = fault
            return
        self._count_restart(NATS_LABEL, 0, max_restarts)
        say(f"JetStream could not write ({fault}); the disk has room again: restarting nats-server")
        self._jetstream_fault = None
        self.nats.restart()

    def _count_restart(self, label: str, code: int, max_restarts: int) -> None:
        """Note a restart of `label`; raise if it has exited `max_restarts` times within the window."""
        now = time.monotonic()
        recent = [t for t in self.restarts.get(label, []) if now - t < RESTART_WINDOW_S]
        if len(recent) >= max_restarts:
            raise RuntimeError(f"{label} keeps exiting (code {code}); giving up")
        self.restarts[label] = [*recent, now]

    def stop(self) -> None:
        for proc in self.children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for name, proc in self.children.items():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                say(f"{name} did not stop in time; killing it")
                proc.kill()
                proc.wait()
        self.children.clear()
        if self.nats is not None:
            self.nats.stop(timeout_s=2.0)
            self.nats = None


def run_up(
    home: Path, host: str, port: int, nats_url: str | None, demo: bool, replicas: dict[str, int] | None = None
) -> int:
    """Start the stack and keep it up until Ctrl-C / SIGTERM; returns the exit code."""
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stack = Stack(home, host, port, nats_url, dict(os.environ), replicas)
    code = 0
    try:
        stack.start()
        say(f"ready: {stack.base_url}  (API docs {stack.base_url}/docs, health {stack.base_url}/health)")
        if load_token(home) is not None:
            # The token itself stays out of the log: a person pastes it from the file.
            say(f"web UI: {stack.base_url}/ — sign in with the token in {token_path(home)}")
        if demo:
            from artdag_cli.demo import run_demo

            run_demo(stack.base_url, home / "demo", token=load_token(home))
        say("press Ctrl-C to stop")
        while not stopping:
            stack.supervise()
            time.sleep(0.2)
    except (RuntimeError, TimeoutError, OSError) as exc:
        say(f"error: {exc}")
        code = 1
    finally:
        say("stopping…")
        stack.stop()
        say("stopped")
    return code
