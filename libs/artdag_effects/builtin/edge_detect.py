"""Outline edges: the Sobel gradient magnitude of luma, as light lines on black."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from pydantic import Field

from artdag_effects.imaging import blend, luma, to_uint8
from artdag_effects.kit import per_frame
from artdag_effects.spec import EffectParams, EffectSpec, Frame, FrameContext

VERSION = "1"


class EdgeDetectParams(EffectParams):
    """Edge gain and look."""

    strength: float = Field(1.0, ge=0.1, le=10, description="edge brightness gain")
    intensity: float = Field(1.0, ge=0, le=1, description="mix with the original; 0 = unchanged")
    color: bool = Field(False, description="tint edges with the picture's own colours")
    invert: bool = Field(False, description="dark lines on white")


def sobel_magnitude(frame: Frame) -> npt.NDArray[np.float32]:
    """(H, W) float32 Sobel gradient magnitude of luma, scaled so a hard black/white edge ≈ 255."""
    p = np.pad(luma(frame).astype(np.float32), 1, mode="edge")
    gx = (p[:-2, 2:] + 2 * p[1:-1, 2:] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[1:-1, :-2] + p[2:, :-2])
    gy = (p[2:, :-2] + 2 * p[2:, 1:-1] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[:-2, 1:-1] + p[:-2, 2:])
    mag: npt.NDArray[np.float32] = np.sqrt(gx * gx + gy * gy) * np.float32(0.25)
    return mag


def _apply(frame: Frame, params: EdgeDetectParams, ctx: FrameContext) -> Frame:
    if params.intensity == 0:
        return frame
    mag = np.minimum(sobel_magnitude(frame) * np.float32(params.strength), 255)
    if params.invert:
        mag = 255 - mag
    if params.color:
        edges = to_uint8(frame.astype(np.float32) * (mag[..., None] / 255))
    else:
        edges = np.repeat(to_uint8(mag)[..., None], 3, axis=2)
    return blend(frame, edges, params.intensity)


EFFECT = EffectSpec(
    name="edge_detect",
    version=VERSION,
    params_model=EdgeDetectParams,
    description="Show only the edges (Sobel outline).",
    factory=per_frame(EdgeDetectParams, _apply),
)
