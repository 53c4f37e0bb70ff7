"""Kaleidoscope: fold the picture into `segments` mirrored wedges around a centre (polar remap)."""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, Field

from artdag_effects.imaging import Remap, pixel_grid
from artdag_effects.kit import Memo
from artdag_effects.spec import EffectParams, EffectSetup, EffectSpec, Frame, FrameContext, FrameEffect

VERSION = "1"


class KaleidoscopeParams(EffectParams):
    """Wedges, orientation and centre."""

    segments: int = Field(6, ge=2, le=32, description="number of mirrored wedges")
    rotation: float = Field(0.0, ge=-360, le=360, description="orientation of the wedges, degrees")
    spin: float = Field(0.0, ge=-720, le=720, description="rotation speed, degrees per second")
    center_x: float = Field(0.5, ge=0, le=1, description="centre, as a fraction of the width")
    center_y: float = Field(0.5, ge=0, le=1, description="centre, as a fraction of the height")


def _remap(key: tuple[int, int, int, float, float, float]) -> Remap:
    h, w, segments, degrees, fx, fy = key
    ys, xs = pixel_grid(h, w)
    cy, cx = fy * (h - 1), fx * (w - 1)
    dy, dx = ys - cy, xs - cx
    r = np.hypot(dx, dy)
    wedge = 2 * math.pi / segments
    theta = np.mod(np.arctan2(dy, dx) - math.radians(degrees), wedge)
    theta = np.where(theta > wedge / 2, wedge - theta, theta) + math.radians(degrees)
    return Remap(cy + r * np.sin(theta), cx + r * np.cos(theta), h, w, edge="reflect")


def _factory(params: BaseModel, setup: EffectSetup) -> FrameEffect:
    maps = Memo(_remap)

    def apply(frame: Frame, ctx: FrameContext) -> Frame:
        p = KaleidoscopeParams.of(ctx.params)
        degrees = round((p.rotation + p.spin * ctx.time_s) % 360.0, 6)
        h, w = frame.shape[:2]
        return maps((h, w, p.segments, degrees, p.center_x, p.center_y))(frame)

    return apply


EFFECT = EffectSpec(
    name="kaleidoscope",
    version=VERSION,
    params_model=KaleidoscopeParams,
    description="Fold the picture into mirrored wedges like a kaleidoscope.",
    factory=_factory,
)
