"""Glow around bright areas: the parts above `threshold` are blurred and added back."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from artdag_effects.imaging import gaussian_blur, to_uint8
from artdag_effects.kit import per_frame
from artdag_effects.spec import EffectParams, EffectSpec, Frame, FrameContext

VERSION = "1"


class BloomParams(EffectParams):
    """Which light glows, how wide and how strongly."""

    threshold: float = Field(170.0, ge=0, le=254, description="channel level above which light glows")
    radius: float = Field(10.0, ge=0.5, le=64, description="glow spread (gaussian sigma, pixels)")
    intensity: float = Field(1.0, ge=0, le=4, description="glow gain; 0 = unchanged")


def _apply(frame: Frame, params: BloomParams, ctx: FrameContext) -> Frame:
    if params.intensity == 0:
        return frame
    f = frame.astype(np.float32)
    bright = np.maximum(f - np.float32(params.threshold), 0) * np.float32(255 / (255 - params.threshold))
    glow = gaussian_blur(bright, params.radius)
    f += np.float32(params.intensity) * glow
    return to_uint8(f)


EFFECT = EffectSpec(
    name="bloom",
    version=VERSION,
    params_model=BloomParams,
    description="Make highlights glow.",
    factory=per_frame(BloomParams, _apply),
)
