"""Datamosh: macro-blocks refuse to update and smear, like a video stream that lost its keyframes.

For every frame a seeded random choice decides, per `block`-sized block, whether
it shows the new frame or holds the previous *output* moved by a small random
motion vector, so held blocks drag and smear over time. Frames must arrive in
order: an index that does not follow the previous one restarts the effect.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field

from artdag_effects.imaging import rng_for
from artdag_effects.spec import EffectParams, EffectSetup, EffectSpec, Frame, FrameContext, FrameEffect

VERSION = "1"


class DatamoshParams(EffectParams):
    """Block size, how much holds, how far it drifts, and how often it clears."""

    block: int = Field(16, ge=4, le=128, description="macro-block size in pixels")
    intensity: float = Field(0.5, ge=0, le=1, description="share of blocks that hold the previous picture")
    motion: int = Field(4, ge=0, le=64, description="largest drift of a held block per frame, pixels")
    keyframe_every: int = Field(0, ge=0, le=100_000, description="show a clean frame every N frames; 0 = never")


class _Datamosh:
    """One run: remembers the previous output and the index it was made for."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.previous: npt.NDArray[np.uint8] | None = None
        self.index = -2

    def __call__(self, frame: Frame, ctx: FrameContext) -> Frame:
        p = DatamoshParams.of(ctx.params)
        previous, follows = self.previous, ctx.index == self.index + 1
        self.index = ctx.index
        keyframe = p.keyframe_every > 0 and ctx.index % p.keyframe_every == 0
        if previous is None or not follows or keyframe or previous.shape != frame.shape:
            self.previous = frame.copy()
            return frame
        h, w = frame.shape[:2]
        rows, cols = -(-h // p.block), -(-w // p.block)
        rng = rng_for(self.seed, ctx.index)
        hold = rng.random((rows, cols)) < p.intensity
        drift = rng.integers(-p.motion, p.motion + 1, size=(2, rows, cols))
        by, bx = np.arange(h) // p.block, np.arange(w) // p.block
        src_y = np.clip(np.arange(h)[:, None] - drift[0][by][:, bx], 0, h - 1)
        src_x = np.clip(np.arange(w)[None, :] - drift[1][by][:, bx], 0, w - 1)
        moved = np.take(previous.reshape(-1, 3), (src_y * w + src_x).reshape(-1), axis=0).reshape(frame.shape)
        out: Frame = np.where(hold[by][:, bx][..., None], moved, frame)
        self.previous = out
        return out.copy()


def _factory(params: BaseModel, setup: EffectSetup) -> FrameEffect:
    return _Datamosh(setup.seed)


EFFECT = EffectSpec(
    name="datamosh",
    version=VERSION,
    params_model=DatamoshParams,
    description="Glitch: blocks hold and smear the previous picture (seeded).",
    factory=_factory,
    temporal=True,
)
