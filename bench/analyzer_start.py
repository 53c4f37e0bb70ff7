"""How long a fresh analyzer process takes to answer its first request (target: under 1 s).

Starts a nats-server, then `python -m services.analyzer`, and asks it to analyze a
click track as soon as it is listening; prints the time from process start to the answer.

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

from artdag_common import rpc
from artdag_common.bus import connect
from artdag_common.content_store import LocalContentStore
from artdag_common.demo_media import write_click_track
from artdag_common.errors import ServiceUnavailableError
from artdag_common.nats_server import EmbeddedNatsServer
from artdag_common.schemas import AnalysisReply, AnalyzeRequest, ContentRecord


async def main() -> int:
    with tempfile.TemporaryDirectory() as tmp, EmbeddedNatsServer(Path(tmp) / "nats") as server:
        home = Path(tmp) / "home"
        track = Path(tmp) / "click.wav"
        write_click_track(track, bpm=120, duration_s=60.0)
        cid = await LocalContentStore(home / "cache").put_file(track)
        nc = await connect(server.url, "bench")

        async def register(request: ContentRecord) -> ContentRecord:
            return request  # stands in for the cache service, which only records metadata

        await rpc.serve(nc, "cache", "register", ContentRecord, register)
        env = {**os.environ, "ARTDAG_HOME": str(home), "ARTDAG_NATS_URL": server.url, "ARTDAG_LOG_LEVEL": "WARNING"}
        started = time.perf_counter()
        # A plain Popen: the clock starts when the process does, whatever the event loop is doing.
        proc = subprocess.Popen([sys.executable, "-m", "services.analyzer"], env=env)  # noqa: ASYNC220
        try:
            request = AnalyzeRequest(cid=cid, features=["beats", "energy", "spectrum", "onsets"])
            while True:
                try:
                    reply = await rpc.call(nc, "analyzer", "analyze", request, AnalysisReply, timeout_s=30)
                    break
                except ServiceUnavailableError:
                    await asyncio.sleep(0.01)
            elapsed = time.perf_counter() - started
            tempo = reply.result["audio"]["beats"]["tempo"]
            print(
                f"fresh analyzer: first answer (60 s of audio, all audio features) {elapsed:.2f} s after start"
                f" (tempo {tempo:.1f}); target < 1 s"
            )
        finally:
            proc.terminate()
            proc.wait(10)
            await nc.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
