"""Invert colours, blending towards the negative by `intensity`: v·(1 − i) + (255 − v)·i."""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt
from pydantic import Field

from artdag_effects.imaging import apply_lut, identity_ramp, lut_from
from artdag_effects.kit import per_frame
from artdag_effects.spec import EffectParams, EffectSpec, Frame, FrameContext

VERSION = "1"


class InvertParams(EffectParams):
    """How far to invert."""

    intensity: float = Field(1.0, ge=0, le=1, description="0 = unchanged, 1 = full negative")


@functools.lru_cache(maxsize=32)
def _lut(intensity: float) -> npt.NDArray[np.uint8]:
    v = identity_ramp()
    return lut_from(v * (1 - intensity) + (255 - v) * intensity)


def _apply(frame: Frame, params: InvertParams, ctx: FrameContext) -> Frame:
    if params.intensity == 0:
        return frame
    if params.intensity == 1:
        return np.bitwise_not(frame)  # 255 - v, several times faster than a table lookup
    return apply_lut(frame, _lut(params.intensity))


EFFECT = EffectSpec(
    name="invert",
    version=VERSION,
    params_model=InvertParams,
    description="Invert colours (a photographic negative), partially or fully.",
    factory=per_frame(InvertParams, _apply),
    pointwise=True,
)
