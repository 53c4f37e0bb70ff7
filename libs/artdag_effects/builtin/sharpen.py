"""Unsharp mask: add back `amount` times the difference between the frame and its blur."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from artdag_effects.imaging import gaussian_blur, to_uint8
from artdag_effects.kit import per_frame
from artdag_effects.spec import EffectParams, EffectSpec, Frame, FrameContext

VERSION = "1"


class SharpenParams(EffectParams):
    """Strength and scale of the detail boosted."""

    amount: float = Field(1.0, ge=0, le=5, description="detail gain; 0 = unchanged")
    radius: float = Field(1.5, ge=0.5, le=16, description="scale of the detail (gaussian sigma, pixels)")


def _apply(frame: Frame, params: SharpenParams, ctx: FrameContext) -> Frame:
    if params.amount == 0:
        return frame
    f = frame.astype(np.float32)
    detail = f - gaussian_blur(frame, params.radius)
    f += np.float32(params.amount) * detail
    return to_uint8(f)


EFFECT = EffectSpec(
    name="sharpen",
    version=VERSION,
    params_model=SharpenParams,
    description="Sharpen edges and fine detail (unsharp mask).",
    factory=per_frame(SharpenParams, _apply),
)
