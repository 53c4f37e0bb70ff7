"""Upload benchmark: a 1 GiB file streams through `POST /cache/upload` with flat gateway memory.

Starts `artdag up` in a scratch home (or uses `--url` and `--pid` of a running gateway),
streams a generated multipart body of `--mib` MiB (never held in memory here either),
and prints the gateway's peak RSS before and after, and the throughput in MB/s.

    .venv/bin/python bench/upload.py [--mib 1024] [--url http://127.0.0.1:8100 --pid PID]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from artdag_common.nats_server import free_port
from artdag_common.tokens import client_token, load_token

CHUNK = 1024 * 1024
BOUNDARY = "artdag-bench-boundary"


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for pid {pid}")


def find_gateway(parent: int) -> int:
    """The `python -m services.gateway` process below `parent`."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
            stat = (cmdline.parent / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if b"services.gateway" in args and int(stat[1]) == parent:
            return int(cmdline.parent.name)
    raise RuntimeError("no gateway process found")


def body(total: int) -> Iterator[bytes]:
    """A multipart form with one `file` part of `total` pseudo-random bytes, made as it is sent."""
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="bench.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    block = os.urandom(CHUNK)
    sent = 0
    while sent < total:
        piece = block[: min(CHUNK, total - sent)]
        # Vary each chunk so that nothing deduplicates; cheap and still incompressible.
        yield sent.to_bytes(8, "big") + piece[8:]
        sent += len(piece)
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def run(url: str, gateway_pid: int, mib: int, token: str | None) -> None:
    total = mib * CHUNK
    rss_before = status_kib(gateway_pid, "VmRSS")
    started = time.perf_counter()
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(timeout=None, headers=auth) as client:
        response = client.post(
            f"{url}/cache/upload",
            content=body(total),
            headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        )
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    peak = status_kib(gateway_pid, "VmHWM")
    print(f"uploaded {mib} MiB in {elapsed:.1f} s: {total / elapsed / 1e6:.0f} MB/s -> {response.json()['cid']}")
    print(f"gateway RSS before {rss_before / 1024:.0f} MiB, peak {peak / 1024:.0f} MiB (VmHWM over its lifetime)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024, help="upload size in MiB (default 1024)")
    parser.add_argument("--url", help="a running gateway (with --pid)")
    parser.add_argument("--pid", type=int, help="the running gateway's process id")
    args = parser.parse_args()
    if args.url:
        if not args.pid:
            parser.error("--url needs --pid (the gateway's process, to read its memory)")
        # The token: ARTDAG_TOKEN, or the one `artdag up` saved under ARTDAG_HOME (~/.artdag).
        run(args.url.rstrip("/"), args.pid, args.mib, client_token())
        return 0
    cli = Path(sys.executable).parent / "artdag"
    with tempfile.TemporaryDirectory(prefix="artdag-bench-") as home:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ARTDAG_")}
        env["ARTDAG_MAX_UPLOAD_BYTES"] = str(args.mib * CHUNK + CHUNK)
        log = Path(home) / "up.log"
        with log.open("wb") as out:
            up = subprocess.Popen(
                [str(cli), "up", "--home", home, "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT
            )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                if up.poll() is not None:
                    raise SystemExit(f"artdag up exited:\n{log.read_text()}")
                try:
                    if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"stack not healthy:\n{log.read_text()}")
                time.sleep(0.2)
            print(f"stack up in {home} (local content store)")
            run(url, find_gateway(up.pid), args.mib, load_token(Path(home)))
        finally:
            up.send_signal(signal.SIGTERM)
            try:
                up.wait(15)
            except subprocess.TimeoutExpired:
                up.kill()
                up.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
