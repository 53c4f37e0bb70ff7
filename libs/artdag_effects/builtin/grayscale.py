"""Remove colour: every channel becomes the Rec. 601 luma, blended in by `intensity`."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from artdag_effects.imaging import blend, luma
from artdag_effects.kit import per_frame
from artdag_effects.spec import EffectParams, EffectSpec, Frame, FrameContext

VERSION = "1"


class GrayscaleParams(EffectParams):
    """How grey."""

    intensity: float = Field(1.0, ge=0, le=1, description="0 = unchanged, 1 = fully grey")


def _apply(frame: Frame, params: GrayscaleParams, ctx: FrameContext) -> Frame:
    if params.intensity == 0:
        return frame
    grey = np.repeat(luma(frame)[..., None], 3, axis=2)
    return blend(frame, grey, params.intensity)


EFFECT = EffectSpec(
    name="grayscale",
    version=VERSION,
    params_model=GrayscaleParams,
    description="Convert to shades of grey (Rec. 601 luma).",
    factory=per_frame(GrayscaleParams, _apply),
    pointwise=True,
)
