"""Memory benchmark: peak RSS of rendering one step does not grow with the input's length.

Renders the same EFFECT step over a short and a long 720p input, each in a fresh
process, and prints the peak resident set size of each (target: a 10-minute 720p
input through an effect stays under 400 MB). Then plans the README's beat-sync recipe
over the long input and a track of the same length (120 BPM) with the real planner
(fused, grouped, hand-offs) and renders every step of it in a fresh process, as an
executor's worker would: the peak RSS of each kind of step and the largest (target:
< 400 MB), and the scratch the render needed (the largest intermediate).

    .venv/bin/python bench/memory.py [--minutes 10] [--effect swirl] [--no-beat-sync]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from artdag_cli.demo_media import write_test_clip


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


def render_step(node_type: str, config: dict[str, Any], inputs: list[str], out: str, handoff: str) -> int:
    """Runs in a fresh process: the peak RSS in KiB of rendering one planned step."""
    from services.executor.operations import run_operation

    run_operation(node_type, config, inputs, out, [f"#{i}" for i in range(len(inputs))], seed=1, handoff=handoff)
    return peak_rss_kib()


def beat_sync(clip: Path, seconds: float, work: Path) -> None:
    """The README's beat-sync recipe over `clip`, every step in a fresh process; prints peak RSS per kind."""
    from artdag_cli.demo_media import write_click_track
    from artdag_common.cid import cid_of_file
    from artdag_common.examples import example_path
    from artdag_common.recipe import parse_recipe
    from artdag_common.schemas import AnalysisReply, MediaInfo
    from services.executor.media import probe
    from services.planner.planning import Chunking, build_plan

    track = work / "track.wav"
    write_click_track(track, bpm=120, duration_s=seconds)
    beats = [round(0.5 * k, 4) for k in range(int(seconds * 2))]
    info = probe(clip)
    media = {
        "video": MediaInfo(
            cid=cid_of_file(clip),
            duration_s=info.duration_s,
            has_video=True,
            has_audio=info.has_audio,
            audio_codec=info.audio_codec,
            fps=float(info.fps),
            frame_count=info.frame_count,
        )
    }
    reply = AnalysisReply(
        analysis_id="b" * 64,
        result_cid=cid_of_file(track),
        cached=False,
        result={"audio": {"beats": {"beat_times": beats}}},
    )
    plan = build_plan(
        parse_recipe(example_path("beat-sync").read_text()),
        {"video": cid_of_file(clip), "audio": cid_of_file(track)},
        media=media,
        analyses={"analyze_audio": reply},
        chunking=Chunking(),
    )
    files = {cid_of_file(clip): clip, cid_of_file(track): track}
    outputs: dict[str, Path] = {}
    peaks: dict[str, int] = {}
    largest = 0
    started = time.perf_counter()
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn, max_tasks_per_child=1) as pool:
        for step in plan.steps:
            if step.node_type == "SOURCE":
                outputs[step.step_id] = files[step.source_cid or ""]
                continue
            if step.node_type == "ANALYZE":
                continue
            out = work / f"{step.step_id[:12]}.mp4"
            inputs = [str(outputs[i]) for i in step.inputs]
            peak = pool.submit(render_step, step.node_type, step.config, inputs, str(out), step.handoff).result()
            peaks[step.node_type] = max(peaks.get(step.node_type, 0), peak)
            outputs[step.step_id] = out
            largest = max(largest, out.stat().st_size)
    took = time.perf_counter() - started
    kinds = ", ".join(f"{kind} {kib / 1024:.0f} MB" for kind, kib in sorted(peaks.items()))
    print(
        f"beat-sync over {seconds / 60:.2f} min 720p30 ({len(beats)} beats, {len(plan.steps)} steps): "
        f"peak RSS {max(peaks.values()) / 1024:.0f} MB ({kinds}); largest step output {largest / 1e6:.0f} MB; "
        f"rendered in {took:.0f} s, one step at a time",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--effect", default="swirl")
    parser.add_argument("--no-beat-sync", action="store_true", help="only the effect")
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
        if not args.no_beat_sync:
            beat_sync(Path(tmp) / f"src{args.minutes * 60:g}.mp4", args.minutes * 60, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
