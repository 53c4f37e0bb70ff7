"""Dispatch benchmark: planner → executor → planner with a no-op step type, against plain JetStream.

Starts `artdag up --executors 2` (SQLite, its own nats-server), then measures
  * a 1,023-step binary tree of NOOP steps (512 leaves), after a 31-step warm-up tree: from the
    HTTP submit to the run's completed event (and, of that, until the first step task is on the
    bus, and from then to the last step's completion), median of TREES runs; steps/s;
  * one-step runs: the step round trip (its task on the bus → its completion event) and
    submit → run completed, p50 over 30 runs;
and, in the same script, a plain JetStream work queue (nats-py, 2 workers, publishes
awaited one by one) doing the same counts, for the ratio. Targets: ≥ 2,000 steps/s,
tree ≤ 0.5 s, round trip p50 ≤ 1.5 ms.

    .venv/bin/python bench/dispatch.py
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import nats.errors
from nats.aio.msg import Msg
from nats.js.api import RetentionPolicy, StreamConfig
from proc_cpu import descendants_cpu

from artdag_common.bus import connect
from artdag_common.codec import unpack
from artdag_common.nats_server import EmbeddedNatsServer, free_port
from artdag_common.tokens import load_token
from artdag_dev.testing import noop_tree_recipe

TREES = 3


async def wait_completed(nc_url: str, http: httpx.AsyncClient, recipe: str) -> tuple[float, float, float]:
    """Submit over HTTP; time until the run's completed event arrives on the bus, until the first
    step task is on the bus, and from then to the last step's completion event (for a one-step
    run: the step round trip)."""
    nc = await connect(nc_url, "bench")
    try:
        done = asyncio.get_running_loop().create_future()
        first_task: list[float] = []
        last_step: list[float] = []

        async def on_event(msg: Msg) -> None:
            if not done.done():
                done.set_result(msg.subject.rsplit(".", 1)[1])

        async def on_task(_msg: Msg) -> None:
            if not first_task:
                first_task.append(time.perf_counter())

        async def on_step(msg: Msg) -> None:
            if json.loads(unpack(msg.data)).get("status") in ("completed", "cached"):
                last_step[:] = [time.perf_counter()]

        await nc.subscribe("artdag.event.run.*.completed", cb=on_event)
        await nc.subscribe("artdag.event.run.*.failed", cb=on_event)
        await nc.subscribe("artdag.task.>", cb=on_task)
        await nc.subscribe("artdag.event.step.>", cb=on_step)
        started = time.perf_counter()
        response = await http.post("/runs", json={"recipe": recipe, "inputs": {}})
        response.raise_for_status()
        status = await asyncio.wait_for(done, 120)
        elapsed = time.perf_counter() - started
        if status != "completed":
            raise RuntimeError(f"run {status}")
        return elapsed, first_task[0] - started, last_step[0] - first_task[0]
    finally:
        await nc.close()


async def artdag(home: Path) -> tuple[float, float, float, float, float, dict[str, float]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARTDAG_", "NATS_", "DATABASE_"))}
    env["ARTDAG_LOG_LEVEL"] = "WARNING"
    log = home / "up.log"
    home.mkdir(parents=True)
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before anything is measured
            [
                str(Path(sys.executable).parent / "artdag"),
                "up",
                "--home",
                str(home),
                "--port",
                str(port),
                "--executors",
                "2",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            for _ in range(300):
                try:
                    if (await http.get("/health")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
            # Submitting needs a token: the one `artdag up` made for the local user.
            http.headers["Authorization"] = f"Bearer {load_token(home)}"
            match = re.search(r"on (nats://\S+),", log.read_text())
            assert match, log.read_text()
            url = match.group(1)
            # A small tree first: the services' first run pays for imports, caches and SQLite pages.
            await wait_completed(url, http, noop_tree_recipe(16, 0))
            before = descendants_cpu(proc.pid)
            timed = [await wait_completed(url, http, noop_tree_recipe(512, salt)) for salt in range(1, TREES + 1)]
            trees = [total for total, _, _ in timed]
            starting = statistics.median(start for _, start, _ in timed)
            executing = statistics.median(steps for _, _, steps in timed)
            after = descendants_cpu(proc.pid)
            tree = statistics.median(trees)
            print("artdag trees: " + ", ".join(f"{t:.3f} s" for t in trees), flush=True)
            cpu = {label: (after[label] - before.get(label, 0.0)) / TREES for label in after}
            trips = [
                await wait_completed(
                    url,
                    http,
                    f"steps:\n  - {{id: a, type: NOOP, inputs: [], config: {{n: {9_000_000 + i}}}}}\noutput: a\n",
                )
                for i in range(30)
            ]
        submit_trip = statistics.median(trip for trip, _, _ in trips)
        step_trip = statistics.median(step for _, _, step in trips)
        return tree, starting, executing, submit_trip, step_trip, cpu
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)


async def baseline(tmp: Path) -> tuple[float, float]:
    with EmbeddedNatsServer(tmp / "nats") as server:
        nc = await connect(server.url, "baseline")
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name="BASE", subjects=["base.>"], retention=RetentionPolicy.WORK_QUEUE))
        sub = await js.pull_subscribe("base.task", durable="workers", stream="BASE")
        count = 1023
        finished = asyncio.Event()
        stop = asyncio.Event()
        seen = 0

        # Throughput phase: batches of 10. Round-trip phase: one message per fetch, which a
        # waiting pull request gets the moment it is published (a batch fetch would wait out
        # its timeout for the other nine, and time that instead of the round trip).
        batch = 10

        async def worker() -> None:
            nonlocal seen
            while not stop.is_set():
                try:
                    msgs = await sub.fetch(batch, timeout=0.05 if batch > 1 else 0.5)
                except (TimeoutError, nats.errors.TimeoutError):
                    continue
                for msg in msgs:
                    await msg.ack()
                    if msg.reply and msg.headers and "reply-to" in msg.headers:
                        await nc.publish(msg.headers["reply-to"], b"done")
                    seen += 1
                    if seen >= count:
                        finished.set()

        workers = [asyncio.create_task(worker()) for _ in range(2)]
        times = []
        for _ in range(TREES):
            seen = 0
            finished.clear()
            started = time.perf_counter()
            for i in range(count):
                await js.publish("base.task", str(i).encode())
            await finished.wait()
            times.append(time.perf_counter() - started)
        tree = statistics.median(times)
        print("JetStream queue: " + ", ".join(f"{t:.3f} s" for t in times), flush=True)
        seen, count, batch = 0, 10**9, 1
        await asyncio.sleep(0.1)  # let fetches of the first phase run out
        trips = []
        for i in range(30):
            inbox = nc.new_inbox()
            got = await nc.subscribe(inbox, max_msgs=1)
            t0 = time.perf_counter()
            await js.publish("base.task", str(i).encode(), headers={"reply-to": inbox})
            await got.next_msg(timeout=5)
            trips.append(time.perf_counter() - t0)
        stop.set()
        await asyncio.gather(*workers)
        await sub.unsubscribe()
        await nc.close()
        return tree, statistics.median(trips)


async def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        base_tree, base_trip = await baseline(Path(tmp))
        tree, starting, executing, trip, step_trip, cpu = await artdag(Path(tmp) / "home")
    print(f"{'':24} {'artdag':>12} {'JetStream WQ':>14} {'ratio':>8}")
    print(f"{'1,023-step tree':24} {tree:10.3f} s {base_tree:12.3f} s {tree / base_tree:7.1f}x")
    print(f"{'  of which starting':24} {starting:10.3f} s   (HTTP submit → first step task: parse, plan, record)")
    print(f"{'  of which executing':24} {executing:10.3f} s   (first step task on the bus → last step done)")
    print(f"{'steps/s':24} {1023 / tree:12.0f} {1023 / base_tree:14.0f}")
    print(f"{'steps/s executing':24} {1023 / executing:12.0f}")
    step_ratio = step_trip / base_trip
    print(f"{'step round trip p50':24} {step_trip * 1000:9.1f} ms {base_trip * 1000:11.2f} ms {step_ratio:7.1f}x")
    print(f"{'submit→done p50':24} {trip * 1000:9.1f} ms   (HTTP submit, plan, SQL records, step, run completed)")
    per_step = ", ".join(f"{label} {seconds * 1000 / 1023:.2f}" for label, seconds in sorted(cpu.items()) if seconds)
    print(f"CPU per step of the tree, ms: {per_step} (total {sum(cpu.values()) * 1000 / 1023:.2f})")
    print("targets: tree ≤ 0.5 s, ≥ 2,000 steps/s, round trip p50 ≤ 1.5 ms")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
