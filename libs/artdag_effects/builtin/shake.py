"""Camera shake: seeded random whole-pixel offsets, new every `hold` frames; edges repeat."""

from __future__ import annotations

from pydantic import BaseModel, Field

from artdag_effects.imaging import rng_for, shift
from artdag_effects.spec import EffectParams, EffectSetup, EffectSpec, Frame, FrameContext, FrameEffect

VERSION = "1"


class ShakeParams(EffectParams):
    """How far and how often."""

    amount: float = Field(0.02, ge=0, le=0.5, description="largest offset, as a fraction of the width; 0 = still")
    hold: int = Field(1, ge=1, le=600, description="frames each offset lasts")


def _factory(params: BaseModel, setup: EffectSetup) -> FrameEffect:
    def apply(frame: Frame, ctx: FrameContext) -> Frame:
        p = ShakeParams.of(ctx.params)
        reach = p.amount * frame.shape[1]
        if reach < 0.5:
            return frame
        dy, dx = rng_for(setup.seed, ctx.index // p.hold).uniform(-reach, reach, size=2)
        return shift(frame, round(dy), round(dx))

    return apply


EFFECT = EffectSpec(
    name="shake",
    version=VERSION,
    params_model=ShakeParams,
    description="Shake the picture with seeded random jolts.",
    factory=_factory,
)
