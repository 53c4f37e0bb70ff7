"""Strobe: the picture flashes at `rate` Hz; in the off part of each cycle it goes black or white,
inverts, or freezes on the last frame shown (hold). Frames must arrive in order.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field

from artdag_effects.spec import EffectParams, EffectSetup, EffectSpec, Frame, FrameContext, FrameEffect

VERSION = "1"


class StrobeParams(EffectParams):
    """Flash rate, on-share and what the off phase shows."""

    rate: float = Field(4.0, ge=0.1, le=60, description="flashes per second")
    duty: float = Field(0.5, ge=0, le=1, description="share of each cycle the picture is shown; 1 = always")
    mode: Literal["black", "white", "invert", "hold"] = Field("black", description="what the off phase shows")


class _Strobe:
    """One run: the last frame shown, for "hold"."""

    def __init__(self) -> None:
        self.held: npt.NDArray[np.uint8] | None = None

    def __call__(self, frame: Frame, ctx: FrameContext) -> Frame:
        p = StrobeParams.of(ctx.params)
        if (ctx.time_s * p.rate) % 1.0 < p.duty:
            if p.mode == "hold":
                self.held = frame.copy()
            return frame
        if p.mode == "black":
            return np.zeros_like(frame)
        if p.mode == "white":
            return np.full_like(frame, 255)
        if p.mode == "invert":
            return np.subtract(np.uint8(255), frame)
        if self.held is None or self.held.shape != frame.shape:
            self.held = frame.copy()
            return frame
        return self.held.copy()


def _factory(params: BaseModel, setup: EffectSetup) -> FrameEffect:
    return _Strobe()


EFFECT = EffectSpec(
    name="strobe",
    version=VERSION,
    params_model=StrobeParams,
    description="Flash the picture on and off in time.",
    factory=_factory,
    temporal=True,
)
