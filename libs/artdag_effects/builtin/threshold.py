"""Black and white by luma: pixels at or above `level` turn white, the rest black."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from artdag_effects.imaging import luma
from artdag_effects.kit import per_frame
from artdag_effects.spec import EffectParams, EffectSpec, Frame, FrameContext

VERSION = "1"


class ThresholdParams(EffectParams):
    """Cut-off level."""

    level: int = Field(128, ge=0, le=256, description="luma at or above which a pixel is white")
    invert: bool = Field(False, description="swap black and white")


def _apply(frame: Frame, params: ThresholdParams, ctx: FrameContext) -> Frame:
    bright = luma(frame) >= params.level
    if params.invert:
        bright = ~bright
    out = np.empty_like(frame)
    out[...] = (bright.view(np.uint8) * np.uint8(255))[..., None]
    return out


EFFECT = EffectSpec(
    name="threshold",
    version=VERSION,
    params_model=ThresholdParams,
    description="Two-tone black and white by brightness.",
    factory=per_frame(ThresholdParams, _apply),
    pointwise=True,
)
