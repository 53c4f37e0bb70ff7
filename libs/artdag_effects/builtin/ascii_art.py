"""ASCII art: each cell becomes a character whose ink matches the cell's brightness.

Characters come from the built-in bitmap font (`artdag_effects.font`), drawn on
black in the cell's own colour, in green, or in white.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from artdag_effects.font import RAMPS, glyph_masks
from artdag_effects.imaging import LUMA_F, cell_means
from artdag_effects.kit import per_frame
from artdag_effects.spec import EffectParams, EffectSpec, Frame, FrameContext

VERSION = "1"

GREEN = np.array([40, 255, 70], dtype=np.float32)
WHITE = np.array([255, 255, 255], dtype=np.float32)


class AsciiArtParams(EffectParams):
    """Cell size, character ramp and ink colour."""

    cell: int = Field(8, ge=4, le=64, description="character cell height in pixels (width is 5/7 of it)")
    charset: Literal["standard", "simple", "blocks", "binary"] = Field("standard", description="character ramp")
    color: Literal["color", "green", "white"] = Field("color", description="ink colour")


def _apply(frame: Frame, params: AsciiArtParams, ctx: FrameContext) -> Frame:
    h, w = frame.shape[:2]
    ch = params.cell
    cw = max(3, round(ch * 5 / 7))
    ramp = RAMPS[params.charset]
    means = cell_means(frame, ch, cw)
    level = means @ LUMA_F
    index = np.minimum((level * (len(ramp) / 256.0)).astype(np.intp), len(ramp) - 1)
    rows, cols = index.shape
    ink = glyph_masks(ramp, ch, cw)[index]  # (rows, cols, ch, cw)
    ink = ink.transpose(0, 2, 1, 3).reshape(rows * ch, cols * cw)[:h, :w]
    if params.color == "color":
        # Brighten the cell colour so thin glyphs still read as that colour.
        peak = np.maximum(means.max(axis=2, keepdims=True), 1)
        colours = np.rint(means * (255 / peak)).astype(np.uint8)
        colour_px = colours.repeat(ch, axis=0).repeat(cw, axis=1)[:h, :w]
        return np.ascontiguousarray(colour_px * ink[..., None])
    tint = (GREEN if params.color == "green" else WHITE).astype(np.uint8)
    return np.ascontiguousarray(ink[..., None] * tint)


EFFECT = EffectSpec(
    name="ascii_art",
    version=VERSION,
    params_model=AsciiArtParams,
    description="Redraw the picture as coloured text characters.",
    factory=per_frame(AsciiArtParams, _apply),
)
