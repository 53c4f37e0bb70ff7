"""Swirl: twist the picture around a centre, most at the centre and not at all beyond `radius`."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field

from artdag_effects.imaging import Remap, pixel_grid
from artdag_effects.kit import Memo
from artdag_effects.spec import EffectParams, EffectSetup, EffectSpec, Frame, FrameContext, FrameEffect

VERSION = "1"


class SwirlParams(EffectParams):
    """Twist, reach and centre."""

    strength: float = Field(3.0, ge=-20, le=20, description="twist at the centre, radians; 0 = unchanged")
    radius: float = Field(0.5, ge=0.05, le=2, description="reach, as a fraction of the shorter side")
    center_x: float = Field(0.5, ge=0, le=1, description="centre, as a fraction of the width")
    center_y: float = Field(0.5, ge=0, le=1, description="centre, as a fraction of the height")


def _remap(key: tuple[int, int, float, float, float, float]) -> Remap:
    h, w, strength, radius, fx, fy = key
    ys, xs = pixel_grid(h, w)
    cy, cx = fy * (h - 1), fx * (w - 1)
    dy, dx = ys - cy, xs - cx
    r = np.hypot(dy, dx)
    reach = radius * min(h, w)
    twist = strength * np.clip(1 - r / reach, 0, 1) ** 2
    theta = np.arctan2(dy, dx) + twist
    return Remap(cy + r * np.sin(theta), cx + r * np.cos(theta), h, w)


def _factory(params: BaseModel, setup: EffectSetup) -> FrameEffect:
    maps = Memo(_remap)

    def apply(frame: Frame, ctx: FrameContext) -> Frame:
        p = SwirlParams.of(ctx.params)
        if p.strength == 0:
            return frame
        h, w = frame.shape[:2]
        return maps((h, w, p.strength, p.radius, p.center_x, p.center_y))(frame)

    return apply


EFFECT = EffectSpec(
    name="swirl",
    version=VERSION,
    params_model=SwirlParams,
    description="Twist the picture around a point.",
    factory=_factory,
)
