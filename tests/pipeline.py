"""Render a whole plan in this process, step by step, as the executors would (hand-offs included).

Tests of the render pipeline use it to check what a run delivers without a stack: each
step runs through `run_operation` with its plan's hand-off and its step id's seed, in
plan order, reading its inputs' outputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from artdag_common.schemas import Plan
from services.executor.operations import INLINE_RENDERERS, output_suffix, run_operation


def render_plan(plan: Plan, sources: Mapping[str, Path], directory: Path) -> dict[str, Path]:
    """Every step's output file, by step id; `sources` maps each input cid to its file."""
    directory.mkdir(parents=True, exist_ok=True)
    outputs: dict[str, Path] = {}
    for step in plan.steps:
        if step.node_type == "SOURCE":
            outputs[step.step_id] = sources[step.source_cid or ""]
            continue
        if step.node_type == "ANALYZE" or step.node_type in INLINE_RENDERERS:
            continue
        output = directory / f"{step.name.replace('/', '_')}-{step.step_id[:8]}{output_suffix(step.node_type)}"
        run_operation(
            step.node_type,
            step.config,
            [str(outputs[i]) for i in step.inputs],
            str(output),
            [step.name] * len(step.inputs),
            seed=int(step.step_id[:16], 16),
            handoff=step.handoff,
        )
        outputs[step.step_id] = output
    return outputs


def rgb_frames(path: Path) -> list[npt.NDArray[np.uint8]]:
    """Every decoded video frame of `path` as RGB."""
    with av.open(str(path)) as container:
        return [np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8) for frame in container.decode(video=0)]


def psnr(reference: list[npt.NDArray[np.uint8]], frames: list[npt.NDArray[np.uint8]]) -> float:
    """Peak signal-to-noise ratio (dB) of `frames` against `reference`, over all frames at once."""
    assert len(reference) == len(frames), f"{len(frames)} frames against {len(reference)}"
    error = np.mean(
        [np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2) for a, b in zip(reference, frames, strict=True)]
    )
    return float(10 * np.log10(255.0**2 / max(float(error), 1e-12)))
