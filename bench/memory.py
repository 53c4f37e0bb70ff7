"""Memory benchmark: peak RSS of rendering one step does not grow with the input's length.

Renders the same EFFECT step over a short and a long 720p input, each in a fresh
process, and prints the peak resident set size of each (target: a 10-minute 720p
input through an effect stays under 400 MB).

    .venv/bin/python bench/memory.py [--minutes 10] [--effect swirl]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from artdag_common.demo_media import write_test_clip


def peak_rss_kib() -> int:
    """This process's own peak RSS. (ru_maxrss would carry over the parent's peak into a spawned child.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def render(src: str, out: str, effect: str) -> tuple[float, int]:
    """Runs in a fresh process: (seconds, peak RSS in KiB of this process)."""
    from services.executor.operations import run_operation

    started = time.perf_counter()
    run_operation("EFFECT", {"effect": effect}, [src], out, ["src"], seed=1)
    return time.perf_counter() - started, peak_rss_kib()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--effect", default="swirl")
    args = parser.parse_args()
    spawn = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        for seconds in (10.0, args.minutes * 60):
            src = Path(tmp) / f"src{seconds:g}.mp4"
            started = time.perf_counter()
            write_test_clip(src, width=1280, height=720, fps=30, duration_s=seconds)
            made = time.perf_counter() - started
            with ProcessPoolExecutor(1, mp_context=spawn) as pool:
                took, peak_kib = pool.submit(render, str(src), str(Path(tmp) / "out.mp4"), args.effect).result()
            print(
                f"{seconds / 60:6.2f} min 720p30 through {args.effect}: peak RSS {peak_kib / 1024:6.1f} MB, "
                f"render {took:6.1f} s ({seconds * 30 / took:5.1f} fps; input made in {made:.1f} s)",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
