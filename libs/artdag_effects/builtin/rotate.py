"""Rotate about the centre (bilinear), optionally spinning; uncovered corners get `background`."""

from __future__ import annotations

import math

from pydantic import BaseModel, Field

from artdag_effects.imaging import Remap, pixel_grid
from artdag_effects.kit import Memo
from artdag_effects.spec import EffectParams, EffectSetup, EffectSpec, Frame, FrameContext, FrameEffect, Rgb

VERSION = "1"


class RotateParams(EffectParams):
    """Angle, spin and fill colour."""

    degrees: float = Field(15.0, ge=-3600, le=3600, description="rotation, degrees counter-clockwise")
    spin: float = Field(0.0, ge=-3600, le=3600, description="added rotation speed, degrees per second")
    background: Rgb = Field((0, 0, 0), description="colour of the uncovered corners")


def _remap(key: tuple[int, int, float, Rgb]) -> Remap:
    h, w, degrees, background = key
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    ys, xs = pixel_grid(h, w)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    dy, dx = ys - cy, xs - cx
    return Remap(cy + s * dx + c * dy, cx + c * dx - s * dy, h, w, edge="background", background=background)


def _factory(params: BaseModel, setup: EffectSetup) -> FrameEffect:
    maps = Memo(_remap)

    def apply(frame: Frame, ctx: FrameContext) -> Frame:
        p = RotateParams.of(ctx.params)
        degrees = round((p.degrees + p.spin * ctx.time_s) % 360.0, 6)
        if degrees in (0.0, 360.0):
            return frame
        h, w = frame.shape[:2]
        return maps((h, w, degrees, p.background))(frame)

    return apply


EFFECT = EffectSpec(
    name="rotate",
    version=VERSION,
    params_model=RotateParams,
    description="Rotate (or spin) the picture about its centre.",
    factory=_factory,
)
