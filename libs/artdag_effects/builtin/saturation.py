"""Scale colour saturation around each pixel's luma (0 = grey, 1 = unchanged, > 1 = vivid)."""

from __future__ import annotations

from pydantic import Field

from artdag_effects.imaging import color_matrix, saturation_matrix
from artdag_effects.kit import per_frame
from artdag_effects.spec import EffectParams, EffectSpec, Frame, FrameContext

VERSION = "1"


class SaturationParams(EffectParams):
    """Saturation gain."""

    amount: float = Field(1.5, ge=0, le=4, description="0 = grey, 1 = unchanged, 2 = twice as saturated")


def _apply(frame: Frame, params: SaturationParams, ctx: FrameContext) -> Frame:
    if params.amount == 1:
        return frame
    return color_matrix(frame, saturation_matrix(params.amount))


EFFECT = EffectSpec(
    name="saturation",
    version=VERSION,
    params_model=SaturationParams,
    description="Make colours more vivid or more muted.",
    factory=per_frame(SaturationParams, _apply),
    pointwise=True,
)
