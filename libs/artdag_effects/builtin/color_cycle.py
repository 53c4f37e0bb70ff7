"""Rotate hue continuously over time: angle = phase + 360·speed·t."""

from __future__ import annotations

from pydantic import Field

from artdag_effects.imaging import color_matrix, hue_rotation_matrix
from artdag_effects.kit import per_frame
from artdag_effects.spec import EffectParams, EffectSpec, Frame, FrameContext

VERSION = "1"


class ColorCycleParams(EffectParams):
    """Speed and starting angle."""

    speed: float = Field(0.5, ge=-10, le=10, description="full hue turns per second (negative = backwards)")
    phase: float = Field(0.0, ge=-360, le=360, description="hue rotation at t = 0, degrees")


def _apply(frame: Frame, params: ColorCycleParams, ctx: FrameContext) -> Frame:
    degrees = (params.phase + 360.0 * params.speed * ctx.time_s) % 360.0
    if degrees == 0:
        return frame
    return color_matrix(frame, hue_rotation_matrix(degrees))


EFFECT = EffectSpec(
    name="color_cycle",
    version=VERSION,
    params_model=ColorCycleParams,
    description="Cycle hues over time.",
    factory=per_frame(ColorCycleParams, _apply),
)
