"""Zoom in by `amount` towards a centre point (bilinear); 1 leaves the frame unchanged."""

from __future__ import annotations

from pydantic import BaseModel, Field

from artdag_effects.imaging import Remap, pixel_grid
from artdag_effects.kit import Memo
from artdag_effects.spec import EffectParams, EffectSetup, EffectSpec, Frame, FrameContext, FrameEffect

VERSION = "1"


class ZoomParams(EffectParams):
    """Magnification and the point that stays put."""

    amount: float = Field(1.5, ge=1, le=10, description="magnification; 1 = unchanged")
    center_x: float = Field(0.5, ge=0, le=1, description="fixed point, as a fraction of the width")
    center_y: float = Field(0.5, ge=0, le=1, description="fixed point, as a fraction of the height")


def _remap(key: tuple[int, int, float, float, float]) -> Remap:
    h, w, amount, fx, fy = key
    ys, xs = pixel_grid(h, w)
    cy, cx = fy * (h - 1), fx * (w - 1)
    return Remap(cy + (ys - cy) / amount, cx + (xs - cx) / amount, h, w)


def _factory(params: BaseModel, setup: EffectSetup) -> FrameEffect:
    maps = Memo(_remap)

    def apply(frame: Frame, ctx: FrameContext) -> Frame:
        p = ZoomParams.of(ctx.params)
        if p.amount == 1:
            return frame
        h, w = frame.shape[:2]
        return maps((h, w, p.amount, p.center_x, p.center_y))(frame)

    return apply


EFFECT = EffectSpec(
    name="zoom",
    version=VERSION,
    params_model=ZoomParams,
    description="Magnify towards a point.",
    factory=_factory,
)
