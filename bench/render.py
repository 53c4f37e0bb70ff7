"""Render benchmark: artdag's executor against the ffmpeg CLI on the same job.

The job: a 10 s 1280x720 30 fps H.264/AAC clip → 640x360 + invert, x264 veryfast.
artdag runs it as one EFFECT step with `size` (resize and effect in one pass, like
ffmpeg's one command) and, for comparison, as a two-step recipe (RESIZE then
EFFECT: two encodes, each step cached on its own). artdag's encoder runs with its
pinned, deterministic settings (two x264 threads, crf 18); ffmpeg with its
defaults plus the same preset and crf. Prints median times, the ratios, and frames
per second of numpy effects alone (no decode or encode).

    .venv/bin/python bench/render.py [--repeat 3] [--effects invert,blur,swirl]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np

from artdag_cli.demo_media import write_test_clip
from services.executor.operations import run_operation


def median_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def artdag_one_step(src: Path, work: Path) -> None:
    """The job as one EFFECT step that resizes in the same pass (the same work ffmpeg does)."""
    config = {"effect": "invert", "size": {"width": 640, "height": 360}}
    run_operation("EFFECT", config, [str(src)], str(work / "inverted1.mp4"), ["src"], seed=1)


def artdag_two_steps(src: Path, work: Path) -> None:
    """The job as a recipe of RESIZE then EFFECT: two steps, each cached on its own."""
    small = work / "small.mp4"
    run_operation("RESIZE", {"width": 640, "height": 360, "mode": "fit"}, [str(src)], str(small), ["src"], seed=1)
    run_operation("EFFECT", {"effect": "invert"}, [str(small)], str(work / "inverted2.mp4"), ["small"], seed=1)


def ffmpeg_job(src: Path, work: Path) -> None:
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(src), "-vf", "scale=640:360,negate", "-c:v", "libx264",
         "-preset", "veryfast", "-crf", "18", "-c:a", "aac", str(work / "ffmpeg.mp4")],
        check=True,
    )  # fmt: skip


def effect_fps(name: str, frames: list[np.ndarray]) -> float:
    from artdag_effects import make_frame_processor

    height, width = frames[0].shape[:2]
    process = make_frame_processor(name, {}, {}, seed=1, width=width, height=height, fps=30.0)
    started = time.perf_counter()
    for index, frame in enumerate(frames):
        process(frame, index)
    return len(frames) / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--effects", default="invert,grayscale,blur,pixelate,swirl,rgb_split")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        src = work / "src.mp4"
        write_test_clip(src, width=1280, height=720, fps=30, duration_s=10.0)
        ours = median_time(lambda: artdag_one_step(src, work), args.repeat)
        two = median_time(lambda: artdag_two_steps(src, work), args.repeat)
        print(f"artdag  EFFECT invert, size 640x360 (1 step):       {ours:6.2f} s")
        print(f"artdag  RESIZE then EFFECT invert (2 steps):        {two:6.2f} s")
        if shutil.which("ffmpeg"):
            theirs = median_time(lambda: ffmpeg_job(src, work), args.repeat)
            print(f"ffmpeg  -vf scale=640:360,negate (1 command):       {theirs:6.2f} s")
            print(f"ratio artdag (1 step) / ffmpeg:  {ours / theirs:.2f}x (target ≤ 1.20x)")
            print(f"ratio artdag (2 steps) / ffmpeg: {two / theirs:.2f}x")
        else:
            print("ffmpeg CLI not installed: no reference time (apt-get install ffmpeg)")
        with av.open(str(work / "small.mp4")) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)][:150]
        for name in args.effects.split(","):
            print(f"effect {name:<12} {effect_fps(name, frames):8.1f} fps at 640x360 (numpy only)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
