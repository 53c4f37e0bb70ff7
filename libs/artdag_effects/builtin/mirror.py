"""Mirror one half of the picture onto the other, or flip the whole picture (the original `mirror`)."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from artdag_effects.kit import per_frame
from artdag_effects.spec import EffectParams, EffectSpec, Frame, FrameContext

VERSION = "1"


class MirrorParams(EffectParams):
    """What is mirrored, along which axis, and which half is kept."""

    axis: Literal["horizontal", "vertical", "both"] = Field(
        "horizontal", description="horizontal = left/right symmetry (or a left/right flip), vertical = top/bottom"
    )
    keep: Literal["first", "second"] = Field("first", description="first = keep the left (top) half; half mode only")
    mode: Literal["half", "flip"] = Field(
        "half", description="half = mirror one half onto the other; flip = flip the whole frame"
    )


def _mirror_axis(image: Frame, axis: int, keep_first: bool) -> None:
    n = image.shape[axis]
    half = n // 2
    view = image if axis == 0 else image.swapaxes(0, 1)
    if keep_first:
        view[n - half :] = view[:half][::-1]
    else:
        view[:half] = view[n - half :][::-1]


def _flip(frame: Frame, axis: str) -> Frame:
    out = frame
    if axis in ("horizontal", "both"):
        out = out[:, ::-1]
    if axis in ("vertical", "both"):
        out = out[::-1]
    return np.ascontiguousarray(out)


def _apply(frame: Frame, params: MirrorParams, ctx: FrameContext) -> Frame:
    if params.mode == "flip":
        return _flip(frame, params.axis)
    out = frame.copy()
    keep_first = params.keep == "first"
    if params.axis in ("horizontal", "both"):
        _mirror_axis(out, 1, keep_first)
    if params.axis in ("vertical", "both"):
        _mirror_axis(out, 0, keep_first)
    return np.ascontiguousarray(out)


EFFECT = EffectSpec(
    name="mirror",
    version=VERSION,
    params_model=MirrorParams,
    description="Make the picture symmetric by mirroring one half, or flip it whole.",
    factory=per_frame(MirrorParams, _apply),
)
