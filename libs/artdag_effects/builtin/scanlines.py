"""CRT scanlines: darken `thickness` rows out of every `spacing`, optionally scrolling."""

from __future__ import annotations

import functools
import math

import numpy as np
import numpy.typing as npt
from pydantic import Field

from artdag_effects.imaging import apply_lut, identity_ramp, lut_from
from artdag_effects.kit import per_frame
from artdag_effects.spec import EffectParams, EffectSpec, Frame, FrameContext

VERSION = "1"


class ScanlinesParams(EffectParams):
    """Line pattern and darkness."""

    spacing: int = Field(4, ge=2, le=64, description="line period in rows")
    thickness: int = Field(1, ge=1, le=63, description="dark rows per period")
    darkness: float = Field(0.5, ge=0, le=1, description="how dark the lines are; 0 = unchanged")
    scroll: float = Field(0.0, ge=-1000, le=1000, description="rows per second the lines move down")


@functools.lru_cache(maxsize=32)
def _lut(darkness: float) -> npt.NDArray[np.uint8]:
    return lut_from(identity_ramp() * (1 - darkness))


def _apply(frame: Frame, params: ScanlinesParams, ctx: FrameContext) -> Frame:
    if params.darkness == 0:
        return frame
    shift = math.floor(params.scroll * ctx.time_s)
    rows = (np.arange(frame.shape[0]) - shift) % params.spacing < params.thickness
    out = frame.copy()
    out[rows] = apply_lut(frame[rows], _lut(params.darkness))
    return out


EFFECT = EffectSpec(
    name="scanlines",
    version=VERSION,
    params_model=ScanlinesParams,
    description="Overlay dark horizontal lines like an old CRT.",
    factory=per_frame(ScanlinesParams, _apply),
)
