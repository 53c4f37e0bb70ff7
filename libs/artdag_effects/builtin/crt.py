"""CRT: an old television's look, dark scanlines and a vignette, as one per-pixel gain map.

The original engine's `crt` rendered as a vignette; this keeps that and adds the
scanlines the name promises (`scanlines: 0` gives the original's plain vignette).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field

from artdag_effects.imaging import apply_gain, gain_weights, pixel_grid
from artdag_effects.kit import Memo
from artdag_effects.spec import EffectParams, EffectSetup, EffectSpec, Frame, FrameContext, FrameEffect

VERSION = "1"


class CrtParams(EffectParams):
    """Scanline darkness and pitch, corner darkness."""

    scanlines: float = Field(0.35, ge=0, le=1, description="how dark every scanline is; 0 = none")
    spacing: int = Field(3, ge=2, le=16, description="scanline period in rows (one dark row per period)")
    vignette: float = Field(0.4, ge=0, le=1, description="darkening at the corners; 0 = none")


def _gains(key: tuple[int, int, float, int, float]) -> npt.NDArray[np.uint16]:
    h, w, scanlines, spacing, vignette = key
    ys, xs = pixel_grid(h, w)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    r2 = (((ys - cy) / max(cy, 1)) ** 2 + ((xs - cx) / max(cx, 1)) ** 2) / 2  # 0 at the centre, 1 at corners
    gain = 1 - vignette * r2
    gain[np.arange(h) % spacing == spacing - 1] *= 1 - scanlines
    return gain_weights(gain)


def _factory(params: BaseModel, setup: EffectSetup) -> FrameEffect:
    gains = Memo(_gains)

    def apply(frame: Frame, ctx: FrameContext) -> Frame:
        p = CrtParams.of(ctx.params)
        if p.scanlines == 0 and p.vignette == 0:
            return frame
        h, w = frame.shape[:2]
        return apply_gain(frame, gains((h, w, p.scanlines, p.spacing, p.vignette)))

    return apply


EFFECT = EffectSpec(
    name="crt",
    version=VERSION,
    params_model=CrtParams,
    description="Look like an old CRT screen: scanlines and dark corners.",
    factory=_factory,
)
