"""Old-photo brown tone: the classic sepia colour matrix, blended in by `intensity`."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from artdag_effects.imaging import color_matrix
from artdag_effects.kit import per_frame
from artdag_effects.spec import EffectParams, EffectSpec, Frame, FrameContext

VERSION = "1"

SEPIA = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])


class SepiaParams(EffectParams):
    """How strong the tone is."""

    intensity: float = Field(1.0, ge=0, le=1, description="0 = unchanged, 1 = full sepia")


def _apply(frame: Frame, params: SepiaParams, ctx: FrameContext) -> Frame:
    if params.intensity == 0:
        return frame
    matrix = (1 - params.intensity) * np.eye(3) + params.intensity * SEPIA
    return color_matrix(frame, matrix)


EFFECT = EffectSpec(
    name="sepia",
    version=VERSION,
    params_model=SepiaParams,
    description="Tint brown like an old photograph.",
    factory=per_frame(SepiaParams, _apply),
    pointwise=True,
)
