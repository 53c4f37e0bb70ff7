"""EFFECT: run a frame effect from `artdag_effects` over every frame (numpy, RGB)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from av.video.frame import VideoFrame

from artdag_common.errors import InvalidInputError, PermanentError
from artdag_common.operations import ResizeConfig
from services.executor.frames import Step, from_rgb, resize_steps, rgb_to_output, slot_of, to_rgb
from services.executor.media import MediaReader, parse_colour, probe
from services.executor.primitives.single import even_size, render_single


def render_effect(
    input_path: Path,
    output_path: Path,
    *,
    effect: str,
    params: dict[str, Any],
    bindings: dict[str, Any],
    seed: int,
    frames: tuple[int, int] | None = None,
    size: ResizeConfig | None = None,
) -> None:
    """Decode `input_path`, pass each frame as (H, W, 3) uint8 RGB through the effect, encode.

    `params`/`bindings` must already be validated (`EffectConfig` does it).
    The effect sees output frame indices at the input's constant frame rate;
    audio is carried through. With `frames` = (first, end) only that range is
    rendered, without sound, and the effect still sees the whole input's frame
    indices (so bindings and seeds line up): this is one chunk of a long input.
    With `size`, frames are resized (as RESIZE would) in the same pass, before the effect.
    """
    from artdag_effects import make_frame_processor

    width, height = (size.width, size.height) if size is not None else even_size(probe(input_path))
    with MediaReader(input_path) as reader:
        fps, frame_count = reader.fps, slot_of(reader.duration, reader.fps) or None
    process = make_frame_processor(
        effect, params, bindings, seed=seed, width=width, height=height, fps=float(fps), frame_count=frame_count
    )
    to_output = rgb_to_output(width, height)

    def plan(frame: VideoFrame, sar: Fraction | None) -> list[Step]:
        if size is not None:
            colour = parse_colour(size.background)
            return resize_steps(frame, sar, width, height, mode=size.mode, colour=colour, pix_fmt="rgb24")
        return resize_steps(frame, sar, width, height, mode="stretch", pix_fmt="rgb24")

    first = frames[0] if frames is not None else 0

    def hook(frame: VideoFrame, index: int) -> VideoFrame:
        result = process(to_rgb(frame), first + index)
        if not isinstance(result, np.ndarray) or result.shape != (height, width, 3) or result.dtype != np.uint8:
            shape = getattr(result, "shape", None)
            raise PermanentError(f"effect {effect!r} returned {shape} instead of a ({height}, {width}, 3) uint8 frame")
        return to_output(from_rgb(result))

    if frames is None:
        render_single(input_path, output_path, width=width, height=height, plan=plan, hook=hook)
        return
    if frame_count is not None and frames[0] >= frame_count:
        raise InvalidInputError(f"the input has {frame_count} frames, fewer than {frames[0] + 1}", field="frames")
    render_single(
        input_path,
        output_path,
        width=width,
        height=height,
        plan=plan,
        hook=hook,
        start=Fraction(frames[0]) / fps,
        end=Fraction(frames[1]) / fps,
        audio=False,
    )
