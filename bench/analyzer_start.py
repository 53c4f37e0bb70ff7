"""How long a fresh analyzer process takes to be ready, and to answer its first analysis (target: ready under 1 s).

Starts a nats-server, then `python -m services.analyzer`; prints the time from process
start until its health check says ready, and until it has analyzed a minute of audio
asked for at once (the request waits in the queue while the process starts).

    .venv/bin/python bench/analyzer_start.py
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nats.aio.client import Client as NatsClient

from artdag_cli.demo_media import write_click_track
from artdag_common import rpc
from artdag_common.bus import connect
from artdag_common.content_store import LocalContentStore
from artdag_common.contracts import Analyzer, Cache
from artdag_common.errors import ServiceUnavailableError
from artdag_common.nats_server import EmbeddedNatsServer
from artdag_common.schemas import AnalyzeRequest, ContentRecord, HealthRequest


async def main() -> int:
    with tempfile.TemporaryDirectory() as tmp, EmbeddedNatsServer(Path(tmp) / "nats") as server:
        home = Path(tmp) / "home"
        track = Path(tmp) / "click.wav"
        write_click_track(track, bpm=120, duration_s=60.0)
        cid = await LocalContentStore(home / "cache").put_file(track)
        nc = await connect(server.url, "bench")

        async def register(request: ContentRecord) -> ContentRecord:
            return request  # stands in for the cache service, which only records metadata

        await rpc.serve(nc, Cache.register, register)
        env = {**os.environ, "ARTDAG_HOME": str(home), "ARTDAG_NATS_URL": server.url, "ARTDAG_LOG_LEVEL": "WARNING"}
        started = time.perf_counter()
        # A plain Popen: the clock starts when the process does, whatever the event loop is doing.
        proc = subprocess.Popen([sys.executable, "-m", "services.analyzer"], env=env)  # noqa: ASYNC220
        try:
            ready_s = asyncio.create_task(_ready_after(nc, started))
            request = AnalyzeRequest(cid=cid, features=["beats", "energy", "spectrum", "onsets"])
            while True:
                try:
                    reply = await rpc.call(nc, Analyzer.analyze, request, timeout_s=30)
                    break
                except ServiceUnavailableError:
                    await asyncio.sleep(0.01)
            answered_s = time.perf_counter() - started
            tempo = reply.result["audio"]["beats"]["tempo"]
            print(f"fresh analyzer: ready (health ok) {await ready_s:.2f} s after start; target < 1 s")
            print(
                f"fresh analyzer: first analysis (60 s of audio, all audio features) answered {answered_s:.2f} s"
                f" after start (tempo {tempo:.1f})"
            )
        finally:
            proc.terminate()
            proc.wait(10)
            await nc.close()
    return 0


async def _ready_after(nc: NatsClient, started: float) -> float:
    """Seconds from `started` until the analyzer's health check answers ok."""
    while True:
        try:
            reply = await rpc.call(nc, Analyzer.health, HealthRequest(), timeout_s=5)
            if reply.ok:
                return time.perf_counter() - started
        except ServiceUnavailableError:
            pass
        await asyncio.sleep(0.005)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
