"""Neon glow: the picture's edges redrawn as glowing light of one colour over a darkened picture.

Edges are the Sobel outline (`edge_detect`); the glow is that outline blurred and
added back, so lines have a bright core and a soft halo.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from artdag_effects.builtin.edge_detect import sobel_magnitude
from artdag_effects.imaging import gaussian_blur, to_uint8
from artdag_effects.kit import per_frame
from artdag_effects.spec import EffectParams, EffectSpec, Frame, FrameContext, Rgb

VERSION = "1"


class NeonGlowParams(EffectParams):
    """Light colour, which edges light up, how far they glow and what shows beneath."""

    color: Rgb = Field((0, 255, 220), description="colour of the light, [r, g, b] in 0..255")
    strength: float = Field(2.0, ge=0.1, le=10, description="edge gain: higher lights fainter edges")
    threshold: float = Field(16.0, ge=0, le=254, description="edge level (0..255) below which nothing glows")
    glow: float = Field(4.0, ge=0.5, le=32, description="halo spread (gaussian sigma, pixels)")
    intensity: float = Field(1.5, ge=0, le=4, description="halo gain; 0 = bare lines")
    background: float = Field(0.15, ge=0, le=1, description="how much of the picture shows beneath; 0 = black")


def _apply(frame: Frame, params: NeonGlowParams, ctx: FrameContext) -> Frame:
    edge = sobel_magnitude(frame) * np.float32(params.strength)
    # Rescale so the threshold maps to 0 and full white stays 1: weak texture goes dark, lines stay bright.
    edge = np.clip((edge - np.float32(params.threshold)) / np.float32(255 - params.threshold), 0, 1)
    halo = gaussian_blur(edge[..., None], params.glow)[..., 0]
    light = np.minimum(edge + np.float32(params.intensity) * halo, 1)
    out = frame.astype(np.float32) * np.float32(params.background)
    out += light[..., None] * np.asarray(params.color, dtype=np.float32)
    return to_uint8(out)


EFFECT = EffectSpec(
    name="neon_glow",
    version=VERSION,
    params_model=NeonGlowParams,
    description="Turn edges into glowing neon lines of one colour.",
    factory=per_frame(NeonGlowParams, _apply),
)
