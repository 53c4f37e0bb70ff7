"""ASCII art: each cell becomes a character whose ink matches the cell's brightness.

Characters come from the built-in bitmap font (`artdag_effects.font`), drawn on
black in the cell's own colour, in green, or in white. `draw_characters` is shared
with `ascii_zones`, which picks characters from two ramps.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import Field

from artdag_effects.font import RAMPS, glyph_masks
from artdag_effects.imaging import F32, LUMA_F, cell_means
from artdag_effects.kit import per_frame
from artdag_effects.spec import EffectParams, EffectSpec, Frame, FrameContext

VERSION = "1"

GREEN = np.array([40, 255, 70], dtype=np.float32)
WHITE = np.array([255, 255, 255], dtype=np.float32)

Charset = Literal["standard", "simple", "blocks", "binary", "detailed"]
Ink = Literal["color", "green", "white"]


class AsciiArtParams(EffectParams):
    """Cell size, character ramp and ink colour."""

    cell: int = Field(8, ge=4, le=64, description="character cell height in pixels (width is 5/7 of it)")
    charset: Charset = Field("standard", description="character ramp (detailed: 70 levels)")
    color: Ink = Field("color", description="ink colour")


def cell_width(cell_height: int) -> int:
    """The width of a character cell: the font's 5:7 aspect, at least 3 pixels."""
    return max(3, round(cell_height * 5 / 7))


def cell_levels(frame: Frame, cell_h: int, cell_w: int) -> tuple[F32, F32]:
    """Each cell's mean colour (rows, cols, 3) and its luma (rows, cols), in 0..255."""
    means = cell_means(frame, cell_h, cell_w)
    return means, means @ LUMA_F


def ramp_index(level: F32, size: int) -> npt.NDArray[np.intp]:
    """Which of `size` evenly spaced steps each level in 0..255 falls in."""
    return np.minimum((level * (size / 256.0)).astype(np.intp), size - 1)


def draw_characters(frame: Frame, means: F32, chars: str, index: npt.NDArray[np.intp], cell_h: int, ink: Ink) -> Frame:
    """Draw character `chars[index[r, c]]` into each cell on black, in the cell's colour, green or white."""
    h, w = frame.shape[:2]
    cw = cell_width(cell_h)
    rows, cols = index.shape
    masks = glyph_masks(chars, cell_h, cw)[index]  # (rows, cols, cell_h, cw)
    mask = masks.transpose(0, 2, 1, 3).reshape(rows * cell_h, cols * cw)[:h, :w]
    if ink == "color":
        # Brighten the cell colour so thin glyphs still read as that colour.
        peak = np.maximum(means.max(axis=2, keepdims=True), 1)
        colours = np.rint(means * (255 / peak)).astype(np.uint8)
        colour_px = colours.repeat(cell_h, axis=0).repeat(cw, axis=1)[:h, :w]
        return np.ascontiguousarray(colour_px * mask[..., None])
    tint = (GREEN if ink == "green" else WHITE).astype(np.uint8)
    return np.ascontiguousarray(mask[..., None] * tint)


def _apply(frame: Frame, params: AsciiArtParams, ctx: FrameContext) -> Frame:
    ramp = RAMPS[params.charset]
    means, level = cell_levels(frame, params.cell, cell_width(params.cell))
    return draw_characters(frame, means, ramp, ramp_index(level, len(ramp)), params.cell, params.color)


EFFECT = EffectSpec(
    name="ascii_art",
    version=VERSION,
    params_model=AsciiArtParams,
    description="Redraw the picture as coloured text characters.",
    factory=per_frame(AsciiArtParams, _apply),
)
