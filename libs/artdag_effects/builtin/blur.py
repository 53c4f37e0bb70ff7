"""Gaussian blur; `radius` is the standard deviation in pixels. Edges repeat the border."""

from __future__ import annotations

from pydantic import Field

from artdag_effects.imaging import gaussian_blur, to_uint8
from artdag_effects.kit import per_frame
from artdag_effects.spec import EffectParams, EffectSpec, Frame, FrameContext

VERSION = "1"


class BlurParams(EffectParams):
    """Blur strength."""

    radius: float = Field(4.0, ge=0, le=64, description="gaussian sigma in pixels; 0 = unchanged")


def _apply(frame: Frame, params: BlurParams, ctx: FrameContext) -> Frame:
    if params.radius < 0.2:
        return frame
    return to_uint8(gaussian_blur(frame, params.radius))


EFFECT = EffectSpec(
    name="blur",
    version=VERSION,
    params_model=BlurParams,
    description="Soften the picture with a gaussian blur.",
    factory=per_frame(BlurParams, _apply),
)
