"""Darken towards the corners with a smooth radial falloff (the mask is built once per run)."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field

from artdag_effects.imaging import apply_gain, gain_weights, pixel_grid
from artdag_effects.kit import Memo
from artdag_effects.spec import EffectParams, EffectSetup, EffectSpec, Frame, FrameContext, FrameEffect

VERSION = "1"


class VignetteParams(EffectParams):
    """Darkness, where it starts and how gradually."""

    strength: float = Field(0.6, ge=0, le=1, description="darkening at the corners; 0 = unchanged")
    radius: float = Field(0.6, ge=0, le=1.5, description="where darkening starts (0 = centre, 1 = corner)")
    softness: float = Field(0.5, ge=0.01, le=2, description="width of the falloff")


def _mask(key: tuple[int, int, float, float, float]) -> npt.NDArray[np.uint16]:
    h, w, strength, radius, softness = key
    ys, xs = pixel_grid(h, w)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    d = np.hypot((ys - cy) / max(cy, 1), (xs - cx) / max(cx, 1)) / math.sqrt(2)
    t = np.clip((d - radius) / softness, 0, 1)
    return gain_weights(1 - strength * t * t * (3 - 2 * t))


def _factory(params: BaseModel, setup: EffectSetup) -> FrameEffect:
    masks = Memo(_mask)

    def apply(frame: Frame, ctx: FrameContext) -> Frame:
        p = VignetteParams.of(ctx.params)
        if p.strength == 0:
            return frame
        h, w = frame.shape[:2]
        return apply_gain(frame, masks((h, w, p.strength, p.radius, p.softness)))

    return apply


EFFECT = EffectSpec(
    name="vignette",
    version=VERSION,
    params_model=VignetteParams,
    description="Darken the edges and corners.",
    factory=_factory,
)
