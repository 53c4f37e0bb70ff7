"""Colour adjustment in one pass, like ffmpeg's `eq` (the original engine's `color-adjust`).

Brightness, contrast and gamma go through one lookup table per channel; saturation is
then scaled around each pixel's luma.
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt
from pydantic import Field

from artdag_effects.imaging import apply_lut, color_matrix, identity_ramp, lut_from, saturation_matrix
from artdag_effects.kit import per_frame
from artdag_effects.spec import EffectParams, EffectSpec, Frame, FrameContext

VERSION = "1"


class ColorAdjustParams(EffectParams):
    """Brightness, contrast, saturation and gamma; 0, 1, 1, 1 leave the picture unchanged."""

    brightness: float = Field(0.0, ge=-1, le=1, description="added light, as a fraction of full white; 0 = none")
    contrast: float = Field(1.1, ge=0, le=4, description="gain around mid-grey; 1 = unchanged, 0 = flat grey")
    saturation: float = Field(1.2, ge=0, le=4, description="0 = grey, 1 = unchanged, 2 = twice as saturated")
    gamma: float = Field(1.0, ge=0.1, le=10, description="above 1 lifts the mid-tones, below 1 darkens them")


@functools.lru_cache(maxsize=64)
def _lut(brightness: float, contrast: float, gamma: float) -> npt.NDArray[np.uint8]:
    v = (identity_ramp() - 128) * contrast + 128 + 255 * brightness
    v = np.clip(v, 0, 255)
    return lut_from(255 * (v / 255) ** (1 / gamma))


def _apply(frame: Frame, params: ColorAdjustParams, ctx: FrameContext) -> Frame:
    out = frame
    if (params.brightness, params.contrast, params.gamma) != (0, 1, 1):
        out = apply_lut(out, _lut(params.brightness, params.contrast, params.gamma))
    if params.saturation != 1:
        out = color_matrix(out, saturation_matrix(params.saturation))
    return out


EFFECT = EffectSpec(
    name="color_adjust",
    version=VERSION,
    params_model=ColorAdjustParams,
    description="Adjust brightness, contrast, saturation and gamma together.",
    factory=per_frame(ColorAdjustParams, _apply),
    pointwise=True,
)
