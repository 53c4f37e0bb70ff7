"""Helpers for tests: real servers per session (NATS, S3, IPFS), isolated names, frame comparison."""

from __future__ import annotations

import json
import os
import shutil
import socket
import socketserver
import subprocess
import sysconfig
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from artdag_common.bus_access import ADMIN, BusCredentials
from artdag_common.nats_server import EmbeddedNatsServer, die_with_parent, free_port, wait_for_port


def noop_tree_recipe(leaves: int, salt: int) -> str:
    """A binary tree of NOOP steps (`2 * leaves - 1`, `leaves` a power of two) that become ready one
    level at a time; `salt` makes every step id new (the dispatch benchmark and tests)."""
    lines = ["name: tree", "steps:"]
    level = [f"l{i}" for i in range(leaves)]
    for i, name in enumerate(level):
        lines.append(f"  - {{id: {name}, type: NOOP, inputs: [], config: {{n: {salt * 100_000 + i}}}}}")
    made, depth = leaves, 0
    while len(level) > 1:
        depth += 1
        parents = []
        for k in range(0, len(level), 2):
            name = f"d{depth}_{k // 2}"
            inputs = f"[{level[k]}, {level[k + 1]}]"
            lines.append(f"  - {{id: {name}, type: NOOP, inputs: {inputs}, config: {{n: {salt * 100_000 + made}}}}}")
            made += 1
            parents.append(name)
        level = parents
    lines.append(f"output: {level[0]}")
    return "\n".join(lines) + "\n"


@contextmanager
def nats_server(store_dir: Path) -> Iterator[EmbeddedNatsServer]:
    """A real JetStream server on a free loopback port with a login per service (as `artdag up` runs it)."""
    credentials = BusCredentials.generate()
    with EmbeddedNatsServer(store_dir, log_file=store_dir / "nats-server.log", credentials=credentials) as server:
        yield server


def bus_settings(server: EmbeddedNatsServer, user: str = ADMIN) -> dict[str, Any]:
    """Service settings that reach `server` as `user` (a service's own login, or admin)."""
    settings: dict[str, Any] = {"nats_url": server.url}
    if server.credentials is not None:
        login = server.credentials.login(user)
        settings.update(nats_user=login.user, nats_password=login.password)
    return settings


def bus_environment(server: EmbeddedNatsServer, user: str = ADMIN) -> dict[str, str]:
    """`bus_settings` as a process's environment."""
    return {f"ARTDAG_{key.upper()}": str(value) for key, value in bus_settings(server, user).items()}


def unique(prefix: str) -> str:
    """A name no other test uses (streams, buckets, subjects)."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def frame_difference(expected: NDArray[np.uint8], actual: NDArray[np.uint8]) -> tuple[float, float]:
    """Mean and max absolute difference of two frames of the same shape."""
    if expected.shape != actual.shape:
        raise AssertionError(f"frame shapes differ: {expected.shape} vs {actual.shape}")
    diff = np.abs(expected.astype(np.int16) - actual.astype(np.int16))
    return float(diff.mean()), float(diff.max())


def _stop(process: subprocess.Popen[bytes], timeout_s: float = 5.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- S3 ------------------------------------------------------------------------


@contextmanager
def moto_s3_server(log_file: Path | None = None, timeout_s: float = 30.0) -> Iterator[str]:
    """moto's S3 server (`moto_server`) on a free loopback port; yields its endpoint URL.

    Any access key and secret are accepted; buckets must be created first.
    """
    binary = Path(sysconfig.get_path("scripts")) / "moto_server"
    if not binary.is_file():
        raise FileNotFoundError("moto_server not found: install the dev extras (pip install -e '.[dev]')")
    port = free_port()
    log = open(log_file, "ab") if log_file is not None else subprocess.DEVNULL  # noqa: SIM115
    try:
        process = subprocess.Popen(
            [str(binary), "-H", "127.0.0.1", "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            preexec_fn=die_with_parent,
        )
        try:
            wait_for_port("127.0.0.1", port, timeout_s)
            yield f"http://127.0.0.1:{port}"
        finally:
            _stop(process)
    finally:
        if log_file is not None and not isinstance(log, int):
            log.close()


# -- IPFS ----------------------------------------------------------------------
#
# No Kubo binary can be installed from the registries this project uses, so the
# tests run js-ipfs (npm `ipfs-daemon`, the reference JavaScript implementation,
# which serves the Kubo-compatible RPC API) with libp2p off (`offline: true`), no
# bootstrap peers, no mDNS, no preload, inside a network namespace of its own
# that has only a loopback interface. Its API is bridged out of the namespace
# through a Unix socket: node forwards the socket to the API inside, and a
# thread here forwards a loopback TCP port to the socket.

JSIPFS_DIR_ENV = "ARTDAG_JSIPFS_DIR"
JSIPFS_DEFAULT_DIR = Path("~/.cache/artdag/jsipfs")
JSIPFS_PACKAGE = {
    "name": "artdag-test-ipfs",
    "private": True,
    "dependencies": {"ipfs-daemon": "0.16.1"},
    # Optional WebRTC transports that a node with libp2p off never loads; one of
    # them names a git tarball, which cannot be fetched from the registry.
    "overrides": {"electron-webrtc": "npm:empty-npm-package@1.0.0", "wrtc": "npm:empty-npm-package@1.0.0"},
}

_JSIPFS_LAUNCHER = """\
// js-ipfs offline, its RPC API on loopback port argv[3], bridged to the Unix socket argv[4].
import net from 'node:net'

// Node 20 lacks Promise.withResolvers, which newer helpers in the tree use.
Promise.withResolvers ??= function () {
  let resolve, reject
  const promise = new Promise((res, rej) => { resolve = res; reject = rej })
  return { promise, resolve, reject }
}
const { Daemon } = await import('ipfs-daemon')

const [repo, port, socketPath] = process.argv.slice(2)
const daemon = new Daemon({
  repo,
  offline: true,
  silent: true,
  preload: { enabled: false },
  init: { algorithm: 'Ed25519', emptyRepo: true },
  config: {
    Addresses: {
      API: `/ip4/127.0.0.1/tcp/${port}`, Gateway: [], Swarm: [], Announce: [], NoAnnounce: [], Delegates: [],
    },
    Bootstrap: [],
    Discovery: { MDNS: { Enabled: false }, webRTCStar: { Enabled: false } },
    Routing: { Type: 'none' },
  },
})
await daemon.start()
const bridge = net.createServer((client) => {
  const api = net.connect(Number(port), '127.0.0.1')
  client.pipe(api).pipe(client)
  client.on('error', () => api.destroy())
  api.on('error', () => client.destroy())
})
bridge.listen(socketPath, () => console.log('ready'))
const stop = async () => { bridge.close(); await daemon.stop(); process.exit(0) }
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
"""


def jsipfs_dir() -> Path:
    """Where js-ipfs for the tests is installed (`ARTDAG_JSIPFS_DIR`, default ~/.cache/artdag/jsipfs)."""
    return Path(os.environ.get(JSIPFS_DIR_ENV) or JSIPFS_DEFAULT_DIR).expanduser()


JSIPFS_COMPLETE = ".artdag-complete"
"""Written last into a js-ipfs install that loaded: a directory without it is not an install."""


def install_jsipfs(target: Path | None = None) -> Path:
    """`npm install` js-ipfs (from the npm registry, no binary downloads) into `target`.

    Installed beside `target` and renamed into place once it loads, so that an interrupted
    install, or two at once (parallel checkouts share the default directory), never leave
    a half-written one where the tests look.
    """
    target = target or jsipfs_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f"{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    try:
        staging.mkdir()
        (staging / "package.json").write_text(json.dumps(JSIPFS_PACKAGE, indent=2) + "\n")
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--omit=optional", "--ignore-scripts"],
            cwd=staging,
            check=True,
            stdin=subprocess.DEVNULL,
        )
        # It must load, not merely exist.
        subprocess.run(
            ["node", "--input-type=module", "-e", "await import('ipfs-daemon')"],
            cwd=staging,
            check=True,
            stdin=subprocess.DEVNULL,
        )
        (staging / JSIPFS_COMPLETE).write_text("ok\n")
        if (target / JSIPFS_COMPLETE).is_file():
            return target  # another install finished first
        if target.exists():
            shutil.rmtree(target, ignore_errors=True)  # an incomplete install of an earlier attempt
        try:
            staging.rename(target)
        except OSError:
            if not (target / JSIPFS_COMPLETE).is_file():
                raise
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def ipfs_node_unavailable(install: Path | None = None) -> str | None:
    """Why `ipfs_node` cannot run here, or None if it can."""
    install = install or jsipfs_dir()
    if shutil.which("node") is None:
        return "node (Node.js >= 20) is not installed (apt-get install nodejs npm)"
    if not (install / JSIPFS_COMPLETE).is_file():
        return (
            f"js-ipfs is not installed in {install} (set {JSIPFS_DIR_ENV}, or run "
            "`python -c 'from artdag_dev.testing import install_jsipfs; install_jsipfs()'`)"
        )
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is missing: the IPFS node must run in its own network namespace"
    probe = subprocess.run(
        ["unshare", "--net", "true"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    if probe.returncode != 0:
        return f"cannot create a network namespace (unshare --net needs root): {probe.stderr.decode().strip()}"
    return None


class _UnixForwarder(socketserver.ThreadingTCPServer):
    """Accepts on a loopback TCP port and pipes each connection to a Unix socket."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        super().__init__(("127.0.0.1", 0), _ForwardHandler)

    @property
    def port(self) -> int:
        port: int = self.server_address[1]
        return port


class _ForwardHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        assert isinstance(self.server, _UnixForwarder)
        client: socket.socket = self.request
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as upstream:
            try:
                upstream.connect(str(self.server.socket_path))
            except OSError:
                return
            back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
            back.start()
            _pump(client, upstream)
            back.join()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(1 << 16):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (src, dst):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@contextmanager
def ipfs_node(work_dir: Path, install: Path | None = None, timeout_s: float = 60.0) -> Iterator[str]:
    """A real, offline IPFS node (js-ipfs) in its own network namespace; yields its RPC API multiaddr."""
    install = install or jsipfs_dir()
    reason = ipfs_node_unavailable(install)
    if reason is not None:
        raise RuntimeError(reason)
    work_dir.mkdir(parents=True, exist_ok=True)
    # ESM resolves packages next to the script, so the launcher sits beside a node_modules link.
    (work_dir / "node_modules").unlink(missing_ok=True)
    (work_dir / "node_modules").symlink_to(install / "node_modules")
    launcher = work_dir / "ipfs-daemon.mjs"
    launcher.write_text(_JSIPFS_LAUNCHER)
    socket_path = work_dir / "api.sock"
    socket_path.unlink(missing_ok=True)
    script = f'ip link set lo up && exec node "{launcher}" "{work_dir / "repo"}" 5001 "{socket_path}"'
    with open(work_dir / "ipfs-node.log", "ab") as log:
        process = subprocess.Popen(
            ["unshare", "--net", "sh", "-c", script],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            preexec_fn=die_with_parent,
        )
    try:
        deadline = time.monotonic() + timeout_s
        while not socket_path.exists():
            if process.poll() is not None:
                raise RuntimeError(f"the IPFS node exited ({process.returncode}); see {work_dir / 'ipfs-node.log'}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the IPFS node did not start in {timeout_s:g} s")
            time.sleep(0.05)
        forwarder = _UnixForwarder(socket_path)
        thread = threading.Thread(target=forwarder.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        thread.start()
        try:
            yield f"/ip4/127.0.0.1/tcp/{forwarder.port}"
        finally:
            forwarder.shutdown()
            forwarder.server_close()
            thread.join()
    finally:
        _stop(process)


def ensure_jsipfs() -> str | None:
    """Install js-ipfs for the tests if it is missing; the reason it still cannot run, or None."""
    reason = ipfs_node_unavailable()
    if reason is not None and "not installed" in reason and shutil.which("npm") is not None:
        install_jsipfs()
        reason = ipfs_node_unavailable()
    return reason
