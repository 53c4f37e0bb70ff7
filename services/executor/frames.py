"""The video side of the executor: filter chains, constant-rate sampling, encoding.

A renderer turns an input into output frames in three steps, each one frame at a
time: `video_track` picks, for every output slot ``k`` at the output frame rate,
the input frame shown at that time (duplicating or dropping frames as needed);
a `VideoChain` (a small libavfilter graph built only from numbers computed here)
converts it — orientation, scaling, padding, colour filters, pixel format; and a
`VideoEncoder` writes it with ``pts = k``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Protocol

import av
import av.filter
import numpy as np
import numpy.typing as npt
from av.audio.frame import AudioFrame
from av.container import OutputContainer
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from artdag_common.errors import InvalidMediaError
from services.executor.encoding import COLOR_MATRIX, PIXEL_FORMAT
from services.executor.media import MediaReader, display_geometry

Step = tuple[str, str]
"""One libavfilter filter: its name and its argument string."""

Planner = Callable[[VideoFrame], list[Step]]
"""Computes the filter steps for a frame's geometry and format."""

U8 = npt.NDArray[np.uint8]

SCALE_FLAGS = "bicubic"


def even(value: Fraction | float, lo: int, hi: int) -> int:
    """`value` rounded to the nearest even integer, clamped to [lo, hi]."""
    return min(hi, max(lo, 2 * math.floor(Fraction(value) / 2 + Fraction(1, 2))))


def fmt(value: float) -> str:
    """A validated finite number as filter-argument text (no exponents, no names)."""
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {value!r}")
    return f"{value:.6f}"


def orient_steps(frame: VideoFrame, sar: Fraction | None) -> tuple[list[Step], Fraction, Fraction]:
    """Steps that turn a frame upright, and its displayed width and height."""
    clockwise, width, height = display_geometry(frame, sar)
    steps: list[Step] = []
    if clockwise == 90:
        steps.append(("transpose", "dir=clock"))
    elif clockwise == 180:
        steps += [("hflip", ""), ("vflip", "")]
    elif clockwise == 270:
        steps.append(("transpose", "dir=cclock"))
    return steps, width, height


_AVCOL_SPC_UNSPECIFIED = 2
_HD_HEIGHT = 720


def source_matrix(frame: VideoFrame) -> str:
    """Filter arguments naming the colour matrix of an untagged HD frame: BT.709, as players assume.

    Without it swscale takes untagged YUV for BT.601 and converts every HD frame of an
    untagged source to BT.709 (5 ms a 720p frame), shifting its colours on the way.
    """
    untagged = frame.colorspace == _AVCOL_SPC_UNSPECIFIED
    return f":in_color_matrix={COLOR_MATRIX}" if untagged and frame.height >= _HD_HEIGHT else ""


def scale_step(width: int, height: int, pix_fmt: str = PIXEL_FORMAT, source: str = "") -> list[Step]:
    """Scale to exactly `width`x`height` in `pix_fmt` (BT.709 limited range for YUV).

    `source`: extra arguments about the input (see `source_matrix`). A frame already in
    that size and format passes through without a copy.
    """
    colour = f":out_color_matrix={COLOR_MATRIX}:out_range=tv" if pix_fmt == PIXEL_FORMAT else ""
    return [
        ("scale", f"w={width}:h={height}:flags={SCALE_FLAGS}{colour}{source}"),
        ("format", f"pix_fmts={pix_fmt}"),
    ]


def resize_steps(
    frame: VideoFrame,
    sar: Fraction | None,
    width: int,
    height: int,
    *,
    mode: str = "fit",
    colour: str = "0x000000",
    pix_fmt: str = PIXEL_FORMAT,
) -> list[Step]:
    """Upright the frame and fit/fill/stretch/pad it into `width`x`height` `pix_fmt`.

    fit: scale inside keeping aspect, pad centred with `colour` (``0xRRGGBB``);
    fill: scale to cover, centre-crop; stretch: scale exactly; pad: fit without upscaling.
    """
    steps, dw, dh = orient_steps(frame, sar)
    w, h = width, height
    if mode == "stretch":
        sw, sh = w, h
    elif mode == "fill":
        scale = max(Fraction(w) / dw, Fraction(h) / dh)
        sw, sh = max(even(dw * scale, w, 2 * w), w), max(even(dh * scale, h, 2 * h), h)
    else:  # fit / pad
        scale = min(Fraction(w) / dw, Fraction(h) / dh)
        if mode == "pad":
            scale = min(scale, Fraction(1))
        sw, sh = even(dw * scale, 2, w), even(dh * scale, 2, h)
    steps += scale_step(sw, sh, pix_fmt, source_matrix(frame))
    if (sw, sh) != (w, h):
        if mode == "fill":
            x, y = ((sw - w) // 2) & ~1, ((sh - h) // 2) & ~1
            steps.append(("crop", f"w={w}:h={h}:x={x}:y={y}:exact=1"))
        else:
            x, y = ((w - sw) // 2) & ~1, ((h - sh) // 2) & ~1
            steps.append(("pad", f"width={w}:height={h}:x={x}:y={y}:color={colour}"))
    steps.append(("setsar", "1"))
    return steps


class VideoChain:
    """A one-frame-in, one-frame-out libavfilter chain planned from the frame's geometry.

    The graph is built for the first frame and rebuilt whenever the input
    geometry or format changes. It runs single-threaded (bit-exact output).
    """

    def __init__(self, plan: Planner) -> None:
        self._plan = plan
        self._graph: av.filter.Graph | None = None
        self._key: tuple[int, int, str, int] | None = None

    def _build(self, frame: VideoFrame) -> av.filter.Graph:
        graph = av.filter.Graph()
        graph.threads = 1
        nodes = [
            graph.add_buffer(
                width=frame.width,
                height=frame.height,
                format=frame.format,
                time_base=frame.time_base or Fraction(1, 1000),
            )
        ]
        for name, args in self._plan(frame):
            nodes.append(graph.add(name, args or None))
        nodes.append(graph.add("buffersink"))
        graph.link_nodes(*nodes)
        graph.configure()
        return graph

    def __call__(self, frame: VideoFrame) -> VideoFrame:
        key = (frame.width, frame.height, frame.format.name, frame.rotation)
        if self._graph is None or key != self._key:
            self._graph = self._build(frame)
            self._key = key
        if frame.pts is None:
            frame.pts = 0
        self._graph.vpush(frame)
        out = self._graph.vpull()
        if not isinstance(out, VideoFrame):  # pragma: no cover - a 1:1 chain always yields
            raise InvalidMediaError("filter chain produced no frame")
        return out


class AudioSink(Protocol):
    """Where `video_track` sends the audio frames it meets while demuxing."""

    def write(self, frame: AudioFrame, start: Fraction) -> None:
        """Take `frame`, which starts `start` seconds into the output."""

    @property
    def done(self) -> bool:
        """Whether no more audio is wanted."""


def slot_of(seconds: Fraction, fps: Fraction) -> int:
    """The output frame slot shown at `seconds` (rounded half up)."""
    return math.floor(seconds * fps + Fraction(1, 2))


def video_track(
    reader: MediaReader,
    convert: Callable[[VideoFrame], VideoFrame],
    *,
    fps: Fraction,
    start: Fraction = Fraction(0),
    end: Fraction | None = None,
    speed: Fraction = Fraction(1),
    length: int | None = None,
    audio: AudioSink | None = None,
) -> Iterator[VideoFrame]:
    """Constant-rate output frames of `reader`'s video, converted by `convert`.

    Output slot ``k`` shows the input frame on screen at ``start + k*speed/fps``
    (input seconds). The track covers [`start`, `end`) of the input, or exactly
    `length` frames (holding the last picture if the input is shorter). Audio
    frames met while demuxing go to `audio` with times on the output timeline.
    Raises `InvalidMediaError` if no video frame can be decoded.
    """
    if reader.video is None:
        raise InvalidMediaError(f"{reader.name}: has no video stream")
    stop = None if end is None else slot_of((end - start) / speed, fps)
    if length is not None:
        stop = length
    reader.seek(start)
    pending: VideoFrame | None = None
    converted: tuple[VideoFrame, VideoFrame] | None = None
    next_slot = 0
    video_end: Fraction | None = None

    def emit(frame: VideoFrame) -> VideoFrame:
        nonlocal converted
        if converted is None or converted[0] is not frame:
            converted = (frame, convert(frame))
        return converted[1]

    for frame in reader.frames(video=True, audio=audio is not None):
        t = reader.time_of(frame)
        if isinstance(frame, AudioFrame):
            if audio is not None and not audio.done:
                audio.write(frame, ((t if t is not None else Fraction(0)) - start) / speed)
            if stop is not None and next_slot >= stop and (audio is None or audio.done):
                break
            continue
        if t is None:
            t = start + Fraction(next_slot) * speed / fps
        step = frame.duration * frame.time_base if frame.duration and frame.time_base is not None else speed / fps
        video_end = t + step if video_end is None else max(video_end, t + step)
        slot = slot_of((t - start) / speed, fps)
        limit = slot if stop is None else min(slot, stop)
        hold = pending if pending is not None else frame
        while next_slot < limit:
            yield emit(hold)
            next_slot += 1
        pending = frame
        if stop is not None and next_slot >= stop and (audio is None or audio.done):
            break

    if pending is None:
        if video_end is None:
            raise InvalidMediaError(f"{reader.name}: video stream has no decodable frames")
        return
    final = slot_of((video_end - start) / speed, fps) if video_end is not None else next_slot
    if stop is not None:
        final = stop if length is not None else min(final, stop)
    while next_slot < final:
        yield emit(pending)
        next_slot += 1


class VideoEncoder:
    """Encodes frames in order with ``pts`` = their slot (frame count so far)."""

    def __init__(self, container: OutputContainer, stream: VideoStream) -> None:
        self._container = container
        self._stream = stream
        self._time_base = stream.codec_context.time_base
        self.frames_written = 0

    def write(self, frame: VideoFrame) -> None:
        """Encode `frame` as the next output frame."""
        frame = padded_copy(frame)
        frame.pts = self.frames_written
        frame.time_base = self._time_base
        self._container.mux(self._stream.encode(frame))
        self.frames_written += 1

    def finish(self) -> None:
        """Flush the encoder."""
        self._container.mux(self._stream.encode(None))


_SLACK_ROWS = 16
_PACKED_BYTES = {"rgb24": 3}  # bytes per pixel of the packed formats we create; planar 8-bit: 1
_croppers: dict[tuple[int, int, str], av.filter.Graph] = {}


def padded_copy(frame: VideoFrame) -> VideoFrame:
    """A copy of an 8-bit planar frame whose memory past the picture is all zero.

    libx264 (and swscale) read past the end of each row and past the last row;
    freshly allocated frames leave those bytes uninitialised, which made
    identical pictures encode to different bytes. The copy is made in a frame
    with `_SLACK_ROWS` extra rows above and below, with every byte written, and then cropped by pointer
    (libavfilter's ``crop`` does not copy), so the over-read lands on zeros.
    """
    width, height, name = frame.width, frame.height, frame.format.name
    tall = VideoFrame(width, height + 2 * _SLACK_ROWS, name)
    for src, dst in zip(frame.planes, tall.planes, strict=True):
        rows = np.frombuffer(memoryview(src), dtype=np.uint8).reshape(src.height, src.line_size)
        # Written in place (the plane's memory is writable): every byte, the slack zeroed.
        out = np.frombuffer(memoryview(dst), dtype=np.uint8).reshape(dst.height, dst.line_size)
        top = (dst.height - src.height) // 2
        visible = src.width * _PACKED_BYTES.get(name, 1)
        out[:top] = 0
        out[top + src.height :] = 0
        out[top : top + src.height, visible:] = 0
        out[top : top + src.height, :visible] = rows[:, :visible]
    tall.pts = 0
    tall.time_base = Fraction(1, 1000)
    key = (width, height, name)
    graph = _croppers.get(key)
    if graph is None:
        graph = av.filter.Graph()
        graph.threads = 1
        graph.link_nodes(
            graph.add_buffer(
                width=width, height=height + 2 * _SLACK_ROWS, format=frame.format, time_base=Fraction(1, 1000)
            ),
            graph.add("crop", f"w={width}:h={height}:x=0:y={_SLACK_ROWS}:exact=1"),
            graph.add("buffersink"),
        )
        graph.configure()
        _croppers[key] = graph
    graph.vpush(tall)
    clean = graph.vpull()
    clean.color_range = frame.color_range
    clean.colorspace = frame.colorspace
    return clean


def to_rgb(frame: VideoFrame) -> U8:
    """An rgb24 frame as an (H, W, 3) uint8 array."""
    return np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)


def from_rgb(array: U8) -> VideoFrame:
    """An (H, W, 3) uint8 array as an rgb24 frame."""
    return padded_copy(VideoFrame.from_ndarray(np.ascontiguousarray(array, dtype=np.uint8), format="rgb24"))


def yuv_planes(frame: VideoFrame) -> U8:
    """A yuv420p frame as its (H*3/2, W) I420 buffer (Y rows, then U, then V)."""
    return np.asarray(frame.to_ndarray(), dtype=np.uint8)


def from_yuv_planes(buffer: U8) -> VideoFrame:
    """The inverse of `yuv_planes`."""
    return padded_copy(VideoFrame.from_ndarray(np.ascontiguousarray(buffer, dtype=np.uint8), format=PIXEL_FORMAT))


def rgb_to_output(width: int, height: int) -> VideoChain:
    """A chain turning rgb24 frames of `width`x`height` into output-profile yuv420p."""
    return VideoChain(lambda _frame: [*scale_step(width, height), ("setsar", "1")])


def held(frames: Iterator[VideoFrame]) -> Iterator[VideoFrame]:
    """`frames`, then its last frame forever (an overlay that outlives its input)."""
    last: VideoFrame | None = None
    for frame in frames:
        last = frame
        yield frame
    if last is None:
        return
    while True:
        yield last
