"""ASCII zones: ASCII art with one character ramp for the dark cells and another for the light ones.

Cells darker than `threshold` spread the dark ramp over 0..threshold; the others
spread the light ramp over threshold..255, so shadows and highlights read as
different textures. Drawing is shared with `ascii_art`.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from artdag_effects.builtin.ascii_art import Charset, Ink, cell_levels, cell_width, draw_characters, ramp_index
from artdag_effects.font import RAMPS
from artdag_effects.kit import per_frame
from artdag_effects.spec import EffectParams, EffectSpec, Frame, FrameContext

VERSION = "1"


class AsciiZonesParams(EffectParams):
    """Cell size, where dark turns light, the two ramps and the ink colour."""

    cell: int = Field(8, ge=4, le=64, description="character cell height in pixels (width is 5/7 of it)")
    threshold: int = Field(128, ge=1, le=255, description="cell luma (0..255) from which the light ramp is used")
    dark_charset: Charset = Field("blocks", description="character ramp for cells below the threshold")
    light_charset: Charset = Field("standard", description="character ramp for cells at or above the threshold")
    color: Ink = Field("color", description="ink colour")


def _apply(frame: Frame, params: AsciiZonesParams, ctx: FrameContext) -> Frame:
    dark, light = RAMPS[params.dark_charset], RAMPS[params.light_charset]
    means, level = cell_levels(frame, params.cell, cell_width(params.cell))
    t = np.float32(params.threshold)
    in_dark = ramp_index(level * (256 / t), len(dark))
    in_light = len(dark) + ramp_index((level - t) * (256 / (256 - t)), len(light))
    index = np.where(level < t, in_dark, in_light)
    return draw_characters(frame, means, dark + light, index, params.cell, params.color)


EFFECT = EffectSpec(
    name="ascii_zones",
    version=VERSION,
    params_model=AsciiZonesParams,
    description="ASCII art with separate character ramps for dark and light areas.",
    factory=per_frame(AsciiZonesParams, _apply),
)
