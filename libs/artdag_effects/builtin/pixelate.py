"""Mosaic: each `block_size` square (anchored top-left) becomes its average colour."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from artdag_effects.imaging import cell_means
from artdag_effects.kit import per_frame
from artdag_effects.spec import EffectParams, EffectSpec, Frame, FrameContext

VERSION = "1"


class PixelateParams(EffectParams):
    """Block size."""

    block_size: int = Field(8, ge=1, le=512, description="block edge in pixels; 1 = unchanged")


def _apply(frame: Frame, params: PixelateParams, ctx: FrameContext) -> Frame:
    size = params.block_size
    if size == 1:
        return frame
    means = np.rint(cell_means(frame, size, size)).astype(np.uint8)
    h, w = frame.shape[:2]
    rows = np.arange(h) // size
    cols = np.arange(w) // size
    return np.ascontiguousarray(means[rows][:, cols])


EFFECT = EffectSpec(
    name="pixelate",
    version=VERSION,
    params_model=PixelateParams,
    description="Turn the picture into big square pixels.",
    factory=per_frame(PixelateParams, _apply),
)
