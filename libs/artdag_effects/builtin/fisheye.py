"""Fisheye: bulge the picture out from a centre (or pinch it in), like a wide-angle lens.

A pixel at distance r from the centre (1 = the farthest corner) shows the picture
at r·((1 − s) + s·r²): the centre is magnified by 1/(1 − s), the corners stay put
and straight lines that miss the centre bend. The map is built once per run.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field

from artdag_effects.imaging import Remap, pixel_grid
from artdag_effects.kit import Memo
from artdag_effects.spec import EffectParams, EffectSetup, EffectSpec, Frame, FrameContext, FrameEffect

VERSION = "1"


class FisheyeParams(EffectParams):
    """Bulge and centre."""

    strength: float = Field(0.5, ge=-1, le=1, description="bulge; negative pinches, 0 = unchanged")
    center_x: float = Field(0.5, ge=0, le=1, description="centre, as a fraction of the width")
    center_y: float = Field(0.5, ge=0, le=1, description="centre, as a fraction of the height")


def _remap(key: tuple[int, int, float, float, float]) -> Remap:
    h, w, strength, fx, fy = key
    ys, xs = pixel_grid(h, w)
    cy, cx = fy * (h - 1), fx * (w - 1)
    dy, dx = ys - cy, xs - cx
    reach = max(np.hypot(max(cy, h - 1 - cy), max(cx, w - 1 - cx)), 1.0)
    r2 = (dy * dy + dx * dx) / (reach * reach)
    scale = (1 - strength) + strength * r2
    return Remap(cy + dy * scale, cx + dx * scale, h, w)


def _factory(params: BaseModel, setup: EffectSetup) -> FrameEffect:
    maps = Memo(_remap)

    def apply(frame: Frame, ctx: FrameContext) -> Frame:
        p = FisheyeParams.of(ctx.params)
        if p.strength == 0:
            return frame
        h, w = frame.shape[:2]
        return maps((h, w, p.strength, p.center_x, p.center_y))(frame)

    return apply


EFFECT = EffectSpec(
    name="fisheye",
    version=VERSION,
    params_model=FisheyeParams,
    description="Bulge the picture out from a point, like a fisheye lens.",
    factory=_factory,
)
