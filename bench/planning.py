"""Planning speed: a recipe that expands into 2,000 beat slices (target: planned in under 1 s).

Plans the README's beat-sync recipe (cut and stretch modes) against a synthetic analysis
with 2,001 beats, as the planner does after the analyzer answers; prints the step count
and the time.

    .venv/bin/python bench/planning.py
"""

from __future__ import annotations

import statistics
import sys
import time

from artdag_common.cid import cid_of_bytes
from artdag_common.examples import example_path
from artdag_common.recipe import parse_recipe
from artdag_common.schemas import AnalysisReply, MediaInfo
from services.planner.planning import build_plan


def main() -> int:
    video, audio = cid_of_bytes(b"video"), cid_of_bytes(b"audio")
    beats = [0.5 * i for i in range(2001)]
    reply = AnalysisReply(
        analysis_id="0" * 64,
        result_cid=cid_of_bytes(b"analysis"),
        cached=True,
        result={"audio": {"beats": {"beat_times": beats, "tempo": 120.0}}},
    )
    media = {
        "video": MediaInfo(cid=video, duration_s=1200.0, has_video=True, has_audio=False, fps=25.0, frame_count=30000)
    }
    for mode in ("cut", "stretch"):
        text = example_path("beat-sync").read_text().replace("mode: stretch", f"mode: {mode}")
        times, steps = [], 0
        for _ in range(5):
            started = time.perf_counter()
            recipe = parse_recipe(text)
            plan = build_plan(recipe, {"video": video, "audio": audio}, analyses={"analyze_audio": reply}, media=media)
            times.append(time.perf_counter() - started)
            steps = len(plan.steps)
        print(
            f"beat-sync {mode:<7}: 2,000 slices → {steps:5d} steps planned in {statistics.median(times):.3f} s"
            " (median of 5; target < 1 s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
