"""RESIZE: scale a video to a fixed size (fit, fill, stretch or pad)."""

from __future__ import annotations

from pathlib import Path

from artdag_common.errors import InvalidInputError
from services.executor.frames import resize_steps
from services.executor.media import RESIZE_MODES, MediaInfo, check_dimension, parse_colour, probe
from services.executor.primitives.single import render_single


def render_resize(
    input_path: Path,
    output_path: Path,
    *,
    width: int,
    height: int,
    mode: str = "fit",
    background: str = "black",
) -> MediaInfo:
    """Resize the first video stream of `input_path` to `width`x`height`.

    Modes are `RESIZE_MODES`; `background` (a name from `NAMED_COLOURS` or
    ``#rrggbb``) fills the bars of ``fit`` and ``pad``. The output is an MP4 in
    the shared profile at the input's constant frame rate; audio is re-encoded
    to AAC. Returns `probe` of the output.

    Raises `InvalidInputError` for bad width/height/mode/background and
    `InvalidMediaError` for input that cannot be opened or decoded or that has
    no video stream.
    """
    width = check_dimension("width", width)
    height = check_dimension("height", height)
    if mode not in RESIZE_MODES:
        raise InvalidInputError(f"must be one of {', '.join(RESIZE_MODES)}, got {mode!r}", field="mode")
    colour = parse_colour(background)
    render_single(
        input_path,
        output_path,
        width=width,
        height=height,
        plan=lambda frame, sar: resize_steps(frame, sar, width, height, mode=mode, colour=colour),
    )
    return probe(output_path)
