"""Brightness and contrast through one lookup table: (v − 128)·contrast + 128 + 255·brightness."""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt
from pydantic import Field

from artdag_effects.imaging import apply_lut, identity_ramp, lut_from
from artdag_effects.kit import per_frame
from artdag_effects.spec import EffectParams, EffectSpec, Frame, FrameContext

VERSION = "1"


class BrightnessContrastParams(EffectParams):
    """Offset and gain."""

    brightness: float = Field(0.1, ge=-1, le=1, description="added light, as a fraction of full white; 0 = none")
    contrast: float = Field(1.2, ge=0, le=4, description="gain around mid-grey; 1 = unchanged, 0 = flat grey")


@functools.lru_cache(maxsize=64)
def _lut(brightness: float, contrast: float) -> npt.NDArray[np.uint8]:
    v = identity_ramp()
    return lut_from((v - 128) * contrast + 128 + 255 * brightness)


def _apply(frame: Frame, params: BrightnessContrastParams, ctx: FrameContext) -> Frame:
    if params.brightness == 0 and params.contrast == 1:
        return frame
    return apply_lut(frame, _lut(params.brightness, params.contrast))


EFFECT = EffectSpec(
    name="brightness_contrast",
    version=VERSION,
    params_model=BrightnessContrastParams,
    description="Adjust brightness and contrast.",
    factory=per_frame(BrightnessContrastParams, _apply),
    pointwise=True,
)
