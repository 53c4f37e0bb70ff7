"""TRANSFORM: crop, rotate, flip, colour (eq, hue), blur, sharpen and speed in one pass."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from av.video.frame import VideoFrame

from artdag_common.errors import InvalidInputError
from artdag_common.operations import TransformConfig
from services.executor.frames import Step, fmt, orient_steps, scale_step, source_matrix
from services.executor.media import probe
from services.executor.primitives.single import even_size, render_single


def geometry_steps(config: TransformConfig, width: int, height: int) -> tuple[list[Step], int, int]:
    """Crop, rotate and flip steps for an upright `width`x`height` picture, and the size after them."""
    steps: list[Step] = []
    if config.crop is not None:
        c = config.crop
        if c.x + c.width > width or c.y + c.height > height:
            raise InvalidInputError(
                f"{c.width}x{c.height} at ({c.x},{c.y}) does not fit in the {width}x{height} picture",
                field="crop",
            )
        steps.append(("crop", f"w={c.width}:h={c.height}:x={c.x}:y={c.y}:exact=1"))
        width, height = c.width, c.height
    if config.rotate == 90:
        steps.append(("transpose", "dir=clock"))
    elif config.rotate == 180:
        steps += [("hflip", ""), ("vflip", "")]
    elif config.rotate == 270:
        steps.append(("transpose", "dir=cclock"))
    if config.rotate in (90, 270):
        width, height = height, width
    if config.flip == "h":
        steps.append(("hflip", ""))
    elif config.flip == "v":
        steps.append(("vflip", ""))
    return steps, width, height


def colour_steps(config: TransformConfig, width: int, height: int) -> list[Step]:
    """Colour, blur and sharpen steps (only the non-neutral ones), from validated numbers.

    The bundled FFmpeg is LGPL (no ``eq``/``boxblur``): brightness, contrast and
    gamma are a luma lookup table with eq's formula, saturation and hue use
    ``hue``, blur is ``avgblur`` (a box blur).
    """
    steps: list[Step] = []
    if (config.contrast, config.brightness, config.gamma) != (1.0, 0.0, 1.0):
        level = f"(val/255-0.5)*{fmt(config.contrast)}+0.5+{fmt(config.brightness)}"
        steps.append(("lutyuv", f"y=clip(255*pow(clip({level}\\,0\\,1)\\,1/{fmt(config.gamma)})\\,0\\,255)"))
    if config.hue or config.saturation != 1.0:
        steps.append(("hue", f"h={fmt(config.hue)}:s={fmt(config.saturation)}"))
    if config.blur:
        limit = min(width, height) // 2
        if config.blur > limit:
            raise InvalidInputError(f"radius {config.blur} is too large for a {width}x{height} picture", field="blur")
        steps.append(("avgblur", f"sizeX={config.blur}:sizeY={config.blur}"))
    if config.sharpen:
        steps.append(
            (
                "unsharp",
                f"luma_msize_x=5:luma_msize_y=5:luma_amount={fmt(config.sharpen)}"
                ":chroma_msize_x=5:chroma_msize_y=5:chroma_amount=0",
            )
        )
    return steps


def render_transform(input_path: Path, output_path: Path, config: TransformConfig) -> None:
    """Apply `config` to `input_path`; an all-neutral config is a plain re-encode.

    Order: upright, crop, rotate (clockwise), flip, eq, hue, blur, sharpen;
    speed retimes the video and pitch-preserves the audio (chained atempo).
    Raises `InvalidInputError` (field "crop" or "blur") when the values do not
    fit the picture.
    """
    upright_w, upright_h = even_size(probe(input_path))
    geometry, width, height = geometry_steps(config, upright_w, upright_h)
    colour = colour_steps(config, width, height)

    def plan(frame: VideoFrame, sar: Fraction | None) -> list[Step]:
        steps, _, _ = orient_steps(frame, sar)
        return [
            *steps,
            *scale_step(upright_w, upright_h, source=source_matrix(frame)),
            *geometry,
            *colour,
            *scale_step(width, height),
            ("setsar", "1"),
        ]

    render_single(input_path, output_path, width=width, height=height, plan=plan, speed=config.speed)
