"""Trails: motion leaves a fading trace (feedback of the previous output, `persistence` per frame).

"blend" averages towards the new frame; "lighten" keeps whichever is brighter, so
bright things leave streaks. Frames must arrive in order: a jump restarts the trail.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field

from artdag_effects.imaging import to_uint8
from artdag_effects.spec import EffectParams, EffectSetup, EffectSpec, Frame, FrameContext, FrameEffect

VERSION = "1"


class TrailsParams(EffectParams):
    """How long trails last and how they mix."""

    persistence: float = Field(0.8, ge=0, le=0.99, description="share of the previous output kept; 0 = none")
    mode: Literal["blend", "lighten"] = Field("blend", description="how the trail mixes with the new frame")


class _Trails:
    """One run: the running trail as float32, and the index it was made for."""

    def __init__(self) -> None:
        self.trail: npt.NDArray[np.float32] | None = None
        self.index = -2

    def __call__(self, frame: Frame, ctx: FrameContext) -> Frame:
        p = TrailsParams.of(ctx.params)
        current = frame.astype(np.float32)
        trail, follows = self.trail, ctx.index == self.index + 1
        self.index = ctx.index
        if trail is None or not follows or trail.shape != current.shape:
            self.trail = current
            return frame
        keep = np.float32(p.persistence)
        acc = trail * keep + current * (1 - keep) if p.mode == "blend" else np.maximum(trail * keep, current)
        self.trail = acc
        return to_uint8(acc)


def _factory(params: BaseModel, setup: EffectSetup) -> FrameEffect:
    return _Trails()


EFFECT = EffectSpec(
    name="trails",
    version=VERSION,
    params_model=TrailsParams,
    description="Leave fading trails behind moving things.",
    factory=_factory,
    temporal=True,
)
