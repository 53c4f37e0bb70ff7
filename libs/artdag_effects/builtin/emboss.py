"""Relief: mid-grey plus the luma difference across each pixel along a light direction."""

from __future__ import annotations

import math

import numpy as np
from pydantic import Field

from artdag_effects.imaging import blend, luma, to_uint8
from artdag_effects.kit import per_frame
from artdag_effects.spec import EffectParams, EffectSpec, Frame, FrameContext

VERSION = "1"


class EmbossParams(EffectParams):
    """Relief depth and light direction."""

    strength: float = Field(1.0, ge=0, le=10, description="relief depth")
    angle: float = Field(135.0, ge=-360, le=360, description="light direction, degrees (0 = from the right)")
    intensity: float = Field(1.0, ge=0, le=1, description="mix with the original; 0 = unchanged")


def _apply(frame: Frame, params: EmbossParams, ctx: FrameContext) -> Frame:
    if params.intensity == 0:
        return frame
    a = math.radians(params.angle)
    dx, dy = round(math.cos(a)), -round(math.sin(a))
    p = np.pad(luma(frame).astype(np.float32), 1, mode="edge")
    h, w = frame.shape[:2]
    ahead = p[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
    behind = p[1 - dy : 1 - dy + h, 1 - dx : 1 - dx + w]
    relief = to_uint8(128 + np.float32(params.strength) * (ahead - behind))
    return blend(frame, np.repeat(relief[..., None], 3, axis=2), params.intensity)


EFFECT = EffectSpec(
    name="emboss",
    version=VERSION,
    params_model=EmbossParams,
    description="Turn the picture into a grey relief.",
    factory=per_frame(EmbossParams, _apply),
)
