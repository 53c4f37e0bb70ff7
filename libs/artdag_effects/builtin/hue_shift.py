"""Rotate every colour's hue by a fixed angle, keeping its brightness (a luma-preserving matrix)."""

from __future__ import annotations

from pydantic import Field

from artdag_effects.imaging import color_matrix, hue_rotation_matrix
from artdag_effects.kit import per_frame
from artdag_effects.spec import EffectParams, EffectSpec, Frame, FrameContext

VERSION = "1"


class HueShiftParams(EffectParams):
    """The angle."""

    degrees: float = Field(90.0, ge=-360, le=360, description="hue rotation in degrees")


def _apply(frame: Frame, params: HueShiftParams, ctx: FrameContext) -> Frame:
    if params.degrees % 360 == 0:
        return frame
    return color_matrix(frame, hue_rotation_matrix(params.degrees))


EFFECT = EffectSpec(
    name="hue_shift",
    version=VERSION,
    params_model=HueShiftParams,
    description="Rotate hues by a fixed angle.",
    factory=per_frame(HueShiftParams, _apply),
    pointwise=True,
)
