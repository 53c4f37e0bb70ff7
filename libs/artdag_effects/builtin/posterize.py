"""Reduce each channel to `levels` evenly spaced values (including 0 and 255)."""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt
from pydantic import Field

from artdag_effects.imaging import apply_lut, identity_ramp, lut_from
from artdag_effects.kit import per_frame
from artdag_effects.spec import EffectParams, EffectSpec, Frame, FrameContext

VERSION = "1"


class PosterizeParams(EffectParams):
    """Number of levels per channel."""

    levels: int = Field(4, ge=2, le=64, description="distinct values per channel")


@functools.lru_cache(maxsize=64)
def _lut(levels: int) -> npt.NDArray[np.uint8]:
    step = 255.0 / (levels - 1)
    return lut_from(np.floor(identity_ramp() / step + 0.5) * step)


def _apply(frame: Frame, params: PosterizeParams, ctx: FrameContext) -> Frame:
    return apply_lut(frame, _lut(params.levels))


EFFECT = EffectSpec(
    name="posterize",
    version=VERSION,
    params_model=PosterizeParams,
    description="Flatten colours into a few bands per channel.",
    factory=per_frame(PosterizeParams, _apply),
    pointwise=True,
)
