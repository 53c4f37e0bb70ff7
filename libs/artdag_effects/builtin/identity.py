"""Pass frames through unchanged: a placeholder step and a baseline for tests."""

from __future__ import annotations

from artdag_effects.kit import per_frame
from artdag_effects.spec import EffectParams, EffectSpec, Frame, FrameContext

VERSION = "1"


class IdentityParams(EffectParams):
    """No parameters."""


def _apply(frame: Frame, params: IdentityParams, ctx: FrameContext) -> Frame:
    return frame


EFFECT = EffectSpec(
    name="identity",
    version=VERSION,
    params_model=IdentityParams,
    description="Pass frames through unchanged.",
    factory=per_frame(IdentityParams, _apply),
    pointwise=True,
)
