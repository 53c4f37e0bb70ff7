"""Pixel sorting: within each row (or column), sort every run of pixels whose key lies in a band.

Pixels outside [low, high] stay put and break runs. Sorting is one stable argsort
over (run id, key), so it is fully vectorised.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import Field

from artdag_effects.imaging import luma
from artdag_effects.kit import per_frame
from artdag_effects.spec import EffectParams, EffectSpec, Frame, FrameContext

VERSION = "1"

Key = Literal["luma", "hue", "saturation"]


class PixelSortParams(EffectParams):
    """Which pixels are sorted, along which axis and by what."""

    low: int = Field(60, ge=0, le=255, description="lowest key value that is sorted")
    high: int = Field(200, ge=0, le=255, description="highest key value that is sorted")
    direction: Literal["horizontal", "vertical"] = Field("horizontal", description="sort along rows or columns")
    key: Key = Field("luma", description="what pixels are sorted by")
    reverse: bool = Field(False, description="sort from bright (high key) to dark")


def sort_key(frame: Frame, key: Key) -> npt.NDArray[np.int64]:
    """(H, W) key in 0..255 per pixel: luma, hue or saturation."""
    if key == "luma":
        return luma(frame).astype(np.int64)
    f = frame.astype(np.int64)
    mx, mn = f.max(axis=2), f.min(axis=2)
    delta = mx - mn
    if key == "saturation":
        return np.where(mx > 0, delta * 255 // np.maximum(mx, 1), 0)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    d = np.maximum(delta, 1)
    sector = np.where(
        mx == r,
        (g - b) * 256 // (6 * d),
        np.where(mx == g, 85 + (b - r) * 256 // (6 * d), 171 + (r - g) * 256 // (6 * d)),
    )
    return np.where(delta > 0, np.mod(sector, 256), 0)


def _apply(frame: Frame, params: PixelSortParams, ctx: FrameContext) -> Frame:
    vertical = params.direction == "vertical"
    image = np.ascontiguousarray(frame.swapaxes(0, 1)) if vertical else frame
    key = sort_key(image, params.key)
    band = (key >= params.low) & (key <= params.high)
    if not band.any():
        return frame
    joins = np.zeros_like(band)
    joins[:, 1:] = band[:, 1:] & band[:, :-1]
    run = np.cumsum(~joins.reshape(-1))  # a new run starts wherever a pixel does not join its left neighbour
    k = (255 - key if params.reverse else key).reshape(-1)
    order = np.argsort(run * 256 + k, kind="stable")
    out = np.take(image.reshape(-1, 3), order, axis=0).reshape(image.shape)
    return np.ascontiguousarray(out.swapaxes(0, 1)) if vertical else out


EFFECT = EffectSpec(
    name="pixel_sort",
    version=VERSION,
    params_model=PixelSortParams,
    description="Sort runs of pixels by brightness, hue or saturation (glitch art).",
    factory=per_frame(PixelSortParams, _apply),
)
