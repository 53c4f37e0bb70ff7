"""Seeded film grain: gaussian noise that changes every frame, the same for the same seed."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field

from artdag_effects.imaging import rng_for, to_uint8
from artdag_effects.spec import EffectParams, EffectSetup, EffectSpec, Frame, FrameContext, FrameEffect

VERSION = "1"


class FilmGrainParams(EffectParams):
    """Grain strength, size and colour."""

    amount: float = Field(0.15, ge=0, le=1, description="noise strength (1 ≈ σ of 64 levels); 0 = unchanged")
    size: int = Field(1, ge=1, le=8, description="grain size in pixels")
    monochrome: bool = Field(True, description="the same noise on every channel")


def _factory(params: BaseModel, setup: EffectSetup) -> FrameEffect:
    def apply(frame: Frame, ctx: FrameContext) -> Frame:
        p = FilmGrainParams.of(ctx.params)
        if p.amount == 0:
            return frame
        h, w = frame.shape[:2]
        gh, gw = -(-h // p.size), -(-w // p.size)
        rng = rng_for(setup.seed, ctx.index)
        noise = rng.standard_normal((gh, gw, 1 if p.monochrome else 3), dtype=np.float32)
        noise *= np.float32(64 * p.amount)
        if p.size > 1:
            noise = noise.repeat(p.size, axis=0).repeat(p.size, axis=1)[:h, :w]
        return to_uint8(frame + noise)

    return apply


EFFECT = EffectSpec(
    name="film_grain",
    version=VERSION,
    params_model=FilmGrainParams,
    description="Add seeded, moving film grain.",
    factory=_factory,
)
