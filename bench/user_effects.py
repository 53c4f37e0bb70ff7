"""Effects users write against the built-in effects they imitate: frames per second, and the ratio.

Each pair is the same effect twice: a built-in (invert, vignette, rgb_split) and its equal in the
effect language. Two figures per pair, on a generated 1280x720 clip (colour bars, a moving box,
noise: frames like a camera's):

- the effect alone: frames per second of its per-frame function on decoded frames (the fastest of
  `--repeat` passes over the same frames);
- the whole step: one EFFECT step through the executor (decode, effect, encode), median seconds.

The issue's target is a user effect within 1.5x of its built-in's frames per second (TARGET); each
row says whether it is met. Both sides are measured in the same run, so the ratio holds on a busy
machine better than either figure does.

    .venv/bin/python bench/user_effects.py [--seconds 4] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from artdag_cli.demo_media import write_test_clip
from artdag_common.cid import cid_of_bytes
from artdag_effects import get_effect
from artdag_effects.spec import EffectSetup, Frame, FrameContext
from artdag_effects.user import register_user_effect
from services.executor.operations import run_operation

TARGET = 1.5

PAIRS = {
    "invert": ("{}", "(define-effect invert-written (- 255 frame))"),
    "vignette": (
        '{"strength": 0.6, "radius": 0.6, "softness": 0.5}',
        """(define-effect vignette-written
             :params ((strength :default 0.6 :range [0 1]) (radius :default 0.6 :range [0 1.5])
                      (softness :default 0.5 :range [0.01 2]))
             (let [d (sqrt (/ (+ (* cx cx) (* cy cy)) 2))
                   k (clamp (/ (- d radius) softness) 0 1)]
               (* frame (- 1 (* strength k k (- 3 (* 2 k)))))))""",
    ),
    "rgb_split": (
        '{"distance": 0.01}',
        """(define-effect split-written :params ((distance :default 0.01 :range [0 0.2]))
             (rgb (channel (sample frame (- x distance) y) 0) g (channel (sample frame (+ x distance) y) 2)))""",
    ),
}


def frames_of(path: Path) -> list[Frame]:
    with av.open(str(path)) as container:
        return [np.asarray(f.to_ndarray(format="rgb24"), np.uint8) for f in container.decode(video=0)]


def effect_fps(names: tuple[str, ...], params: dict[str, object], frames: list[Frame], repeat: int) -> list[float]:
    """Frames per second of each effect: the fastest of `repeat` passes, the effects' passes taken
    in turn (so that a burst of load elsewhere slows one pass of each, not all passes of one)."""
    h, w = frames[0].shape[:2]
    best = dict.fromkeys(names, float("inf"))
    for _ in range(repeat):
        for name in names:
            spec = get_effect(name)
            values = spec.params_model(**params)
            run = spec.factory(values, EffectSetup(w, h, 30.0, 1))
            started = time.perf_counter()
            for index, frame in enumerate(frames):
                run(frame, FrameContext(index, index / 30.0, values))
            best[name] = min(best[name], time.perf_counter() - started)
    return [len(frames) / best[name] for name in names]


def step_seconds(name: str, params: dict[str, object], src: Path, work: Path, repeat: int) -> float:
    times = []
    for k in range(repeat):
        started = time.perf_counter()
        config = {"effect": name, "params": params}
        run_operation("EFFECT", config, [str(src)], str(work / f"{name[:12]}-{k}.mp4"), ["src"], seed=1)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import json

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        src = work / "clip.mp4"
        write_test_clip(src, width=1280, height=720, fps=30, duration_s=args.seconds)
        frames = frames_of(src)
        print(f"{len(frames)} frames of 1280x720; fastest of {args.repeat} passes, median of {args.repeat} steps")
        columns = f"{'effect':<10} {'built-in fps':>12} {'written fps':>12} {'ratio':>6} {'<=' + str(TARGET):>6}"
        print(columns + f"   {'step s':>7} {'written':>8} {'ratio':>6}")
        met = []
        for builtin, (params_json, source) in PAIRS.items():
            params = json.loads(params_json)
            data = source.encode()
            cid = cid_of_bytes(data)
            register_user_effect(cid, data)
            ours, theirs = effect_fps((builtin, cid), params, frames, args.repeat)
            step_ours = step_seconds(builtin, params, src, work, args.repeat)
            step_theirs = step_seconds(cid, params, src, work, args.repeat)
            ratio = ours / theirs
            met.append(ratio <= TARGET)
            print(
                f"{builtin:<10} {ours:>12.0f} {theirs:>12.0f} {ratio:>6.2f} {'yes' if met[-1] else 'NO':>6}"
                f"   {step_ours:>7.2f} {step_theirs:>8.2f} {step_theirs / step_ours:>6.2f}"
            )
        verdict = "every written effect is" if all(met) else f"{met.count(False)} written effect(s) are NOT"
        print(f"{verdict} within {TARGET}x of its built-in's frames per second")


if __name__ == "__main__":
    main()
