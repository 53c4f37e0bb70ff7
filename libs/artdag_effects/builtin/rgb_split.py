"""Chromatic aberration: shift red one way and blue the other along `angle`."""

from __future__ import annotations

import math

import numpy as np
from pydantic import Field

from artdag_effects.imaging import shift
from artdag_effects.kit import per_frame
from artdag_effects.spec import EffectParams, EffectSpec, Frame, FrameContext

VERSION = "1"


class RgbSplitParams(EffectParams):
    """Distance and direction of the split."""

    distance: float = Field(0.01, ge=0, le=0.2, description="channel offset, as a fraction of the width; 0 = none")
    angle: float = Field(0.0, ge=-360, le=360, description="direction red moves, degrees (0 = right)")


def _apply(frame: Frame, params: RgbSplitParams, ctx: FrameContext) -> Frame:
    d = params.distance * frame.shape[1]
    a = math.radians(params.angle)
    dx, dy = round(d * math.cos(a)), round(-d * math.sin(a))
    if dx == 0 and dy == 0:
        return frame
    out = np.empty_like(frame)
    out[..., 0] = shift(frame[..., 0], dy, dx)
    out[..., 1] = frame[..., 1]
    out[..., 2] = shift(frame[..., 2], -dy, -dx)
    return out


EFFECT = EffectSpec(
    name="rgb_split",
    version=VERSION,
    params_model=RgbSplitParams,
    description="Split the colour channels apart (chromatic aberration).",
    factory=per_frame(RgbSplitParams, _apply),
)
