"""Wave distortion: rows (or columns) slide along a moving sine, or rings ripple from the centre."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from artdag_effects.imaging import Remap, pixel_grid
from artdag_effects.kit import Memo
from artdag_effects.spec import EffectParams, EffectSetup, EffectSpec, Frame, FrameContext, FrameEffect

VERSION = "1"

Mode = Literal["horizontal", "vertical", "ripple"]


class WaveParams(EffectParams):
    """Shape and motion of the wave."""

    amplitude: float = Field(0.02, ge=0, le=0.25, description="displacement, as a fraction of the width; 0 = none")
    wavelength: float = Field(0.2, ge=0.01, le=4, description="wave length, as a fraction of the height")
    speed: float = Field(1.0, ge=-20, le=20, description="wave cycles per second")
    mode: Mode = Field("horizontal", description="horizontal: rows slide sideways; ripple: radial rings")


def _remap(key: tuple[int, int, Mode, float, float, float]) -> Remap:
    h, w, mode, amplitude, wavelength, phase = key
    ys, xs = pixel_grid(h, w)
    amp = amplitude * w
    length = wavelength * h
    if mode == "horizontal":
        return Remap(ys, xs + amp * np.sin(2 * math.pi * (ys / length - phase)), h, w, edge="reflect")
    if mode == "vertical":
        return Remap(ys + amp * np.sin(2 * math.pi * (xs / length - phase)), xs, h, w, edge="reflect")
    cy, cx = (h - 1) / 2, (w - 1) / 2
    dy, dx = ys - cy, xs - cx
    r = np.hypot(dy, dx)
    scale = 1 + amp * np.sin(2 * math.pi * (r / length - phase)) / np.maximum(r, 1)
    return Remap(cy + dy * scale, cx + dx * scale, h, w, edge="reflect")


def _factory(params: BaseModel, setup: EffectSetup) -> FrameEffect:
    maps = Memo(_remap)

    def apply(frame: Frame, ctx: FrameContext) -> Frame:
        p = WaveParams.of(ctx.params)
        if p.amplitude == 0:
            return frame
        phase = round((p.speed * ctx.time_s) % 1.0, 6)
        h, w = frame.shape[:2]
        return maps((h, w, p.mode, p.amplitude, p.wavelength, phase))(frame)

    return apply


EFFECT = EffectSpec(
    name="wave",
    version=VERSION,
    params_model=WaveParams,
    description="Distort the picture with moving waves or ripples.",
    factory=_factory,
)
