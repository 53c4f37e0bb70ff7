"""LAYER and BLEND: several video inputs composited frame by frame onto input 0.

Input 0 sets the size, frame rate and length; the other inputs are read in
step with it (and hold their last picture if they end first). Audio comes
from input 0.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from av.video.frame import VideoFrame

from artdag_common.errors import InvalidInputError
from artdag_common.operations import BlendConfig, LayerConfig, LayerInput
from services.executor.audio import AudioWriter, add_audio_like
from services.executor.encoding import MAX_DIMENSION, PIXEL_FORMAT, add_video_stream, open_output
from services.executor.frames import (
    VideoChain,
    VideoEncoder,
    even,
    from_rgb,
    from_yuv_planes,
    held,
    resize_steps,
    rgb_to_output,
    to_rgb,
    video_track,
    yuv_planes,
)
from services.executor.media import MediaReader, probe
from services.executor.primitives.single import even_size

F32 = npt.NDArray[np.float32]

Compose = Callable[[VideoFrame, list[VideoFrame]], VideoFrame]


def _composite(
    inputs: list[Path],
    output_path: Path,
    *,
    sizes: list[tuple[int, int]],
    pix_fmt: str,
    compose: Compose,
) -> None:
    """Read input 0 and the others in step (each scaled to its entry of `sizes`) and encode `compose`'s frames."""
    width, height = sizes[0]
    with contextlib.ExitStack() as stack:
        base = stack.enter_context(MediaReader(inputs[0]))
        others: list[Iterator[VideoFrame]] = []
        for path, (w, h) in zip(inputs[1:], sizes[1:], strict=True):
            reader = stack.enter_context(MediaReader(path))
            others.append(held(video_track(reader, _scaler(reader, w, h, pix_fmt), fps=base.fps)))
        out = stack.enter_context(open_output(output_path))
        encoder = VideoEncoder(out, add_video_stream(out, width, height, base.fps))
        aout = add_audio_like(out, base)
        writer = AudioWriter(out, aout, base.stream_end(base.audio)) if aout is not None else None
        out.start_encoding()
        for frame in video_track(base, _scaler(base, width, height, pix_fmt), fps=base.fps, audio=writer):
            encoder.write(compose(frame, [next(o) for o in others]))
        encoder.finish()
        if writer is not None:
            writer.finish()


def _scaler(reader: MediaReader, width: int, height: int, pix_fmt: str) -> VideoChain:
    sar = reader.video.sample_aspect_ratio if reader.video is not None else None
    return VideoChain(lambda f: resize_steps(f, sar, width, height, mode="stretch", pix_fmt=pix_fmt))


def render_layer(inputs: list[Path], output_path: Path, config: LayerConfig) -> None:
    """Composite inputs 1… over input 0 in order, each at its position, scale and opacity.

    Positions are rounded down to even pixels (yuv420p chroma); overlays may
    extend past the edges. Raises `InvalidInputError` (field "inputs") when the
    placements do not match the overlays one to one.
    """
    placements = list(config.inputs) or [LayerInput() for _ in inputs[1:]]
    if len(placements) != len(inputs) - 1:
        raise InvalidInputError(
            f"has {len(placements)} entries for {len(inputs) - 1} overlay input(s); give one per overlay",
            field="inputs",
        )
    sizes = [even_size(probe(inputs[0]))]
    for path, place in zip(inputs[1:], placements, strict=True):
        info = probe(path)
        sizes.append(
            (even(info.width * place.scale, 2, MAX_DIMENSION), even(info.height * place.scale, 2, MAX_DIMENSION))
        )
    height = sizes[0][1]

    def compose(base: VideoFrame, overlays: list[VideoFrame]) -> VideoFrame:
        canvas = yuv_planes(base).copy()
        for frame, place, (w, h) in zip(overlays, placements, sizes[1:], strict=True):
            x, y = place.position
            _paste(canvas, yuv_planes(frame), x - x % 2, y - y % 2, w, h, height, place.opacity)
        return from_yuv_planes(canvas)

    _composite(inputs, output_path, sizes=sizes, pix_fmt=PIXEL_FORMAT, compose=compose)


def _paste(
    canvas: npt.NDArray[np.uint8],
    overlay: npt.NDArray[np.uint8],
    x: int,
    y: int,
    w: int,
    h: int,
    height: int,
    opacity: float,
) -> None:
    """Mix an I420 `overlay` (w×h) into an I420 `canvas` at even (x, y), plane by plane."""
    width = canvas.shape[1]
    planes = []
    for dst_plane, src_plane, scale in zip(_i420(canvas, width, height), _i420(overlay, w, h), (1, 2, 2), strict=True):
        planes.append((dst_plane, src_plane, x // scale, y // scale))
    for dst, src, px, py in planes:
        x0, y0 = max(px, 0), max(py, 0)
        x1, y1 = min(px + src.shape[1], dst.shape[1]), min(py + src.shape[0], dst.shape[0])
        if x0 >= x1 or y0 >= y1:
            continue
        region = src[y0 - py : y1 - py, x0 - px : x1 - px]
        if opacity >= 1.0:
            dst[y0:y1, x0:x1] = region
        else:
            under = dst[y0:y1, x0:x1].astype(np.float32)
            mixed = under + (region.astype(np.float32) - under) * np.float32(opacity)
            dst[y0:y1, x0:x1] = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def _i420(buffer: npt.NDArray[np.uint8], width: int, height: int) -> list[npt.NDArray[np.uint8]]:
    """Views of the Y, U and V planes of an I420 buffer."""
    flat = buffer.reshape(-1)
    luma, chroma = width * height, (width // 2) * (height // 2)
    return [
        flat[:luma].reshape(height, width),
        flat[luma : luma + chroma].reshape(height // 2, width // 2),
        flat[luma + chroma : luma + 2 * chroma].reshape(height // 2, width // 2),
    ]


def _blend(mode: str, a: F32, b: F32) -> npt.NDArray[Any]:
    """FFmpeg's blend formulas on 0..255 floats; `a` is input 0 (top), `b` is input 1."""
    if mode == "multiply":
        return a * b / 255
    if mode == "screen":
        return 255 - (255 - a) * (255 - b) / 255
    if mode == "overlay":
        return np.where(a < 128, 2 * a * b / 255, 255 - 2 * (255 - a) * (255 - b) / 255)
    if mode == "add":
        return np.asarray(np.minimum(a + b, 255), dtype=np.float32)
    if mode == "subtract":
        return np.asarray(np.maximum(a - b, 0), dtype=np.float32)
    if mode == "average":
        return (a + b) / 2
    if mode == "difference":
        return np.asarray(np.abs(a - b), dtype=np.float32)
    if mode == "lighten":
        return np.asarray(np.maximum(a, b), dtype=np.float32)
    if mode == "darken":
        return np.asarray(np.minimum(a, b), dtype=np.float32)
    raise InvalidInputError(f"unknown blend mode {mode!r}", field="mode")


def render_blend(inputs: list[Path], output_path: Path, config: BlendConfig) -> None:
    """Blend input 1 onto input 0 in RGB; input 1 is stretched to input 0's size.

    `opacity` mixes the blended picture with input 0 (FFmpeg's ``all_opacity``).
    """
    if len(inputs) != 2:
        raise InvalidInputError(f"takes exactly 2 inputs, got {len(inputs)}", field="inputs")
    size = even_size(probe(inputs[0]))
    to_output = rgb_to_output(*size)
    opacity = np.float32(config.opacity)

    def compose(base: VideoFrame, others: list[VideoFrame]) -> VideoFrame:
        a = to_rgb(base).astype(np.float32)
        b = to_rgb(others[0]).astype(np.float32)
        result = _blend(config.mode, a, b)
        mixed = a + (result - a) * opacity
        return to_output(from_rgb(np.clip(np.rint(mixed), 0, 255).astype(np.uint8)))

    _composite(inputs, output_path, sizes=[size, size], pix_fmt="rgb24", compose=compose)
