"""Media operations of the executor: probing and resizing video files.

Everything here is plain synchronous code meant to run inside a worker process.
Inputs are streamed — demuxed, decoded, transformed and encoded one frame at a
time — and outputs are written through `services.executor.encoding`, so that the
same input always renders to the same bytes.

Inputs are opened with a demuxer allowlist and the ``file`` protocol only: a
text file, a playlist or a concat script is rejected instead of being
interpreted (FFmpeg would otherwise happily follow references to other files).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Final

import av
import av.filter
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream
from av.container import InputContainer
from av.stream import Disposition
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from artdag_common.errors import InvalidInputError, InvalidMediaError
from services.executor.encoding import (
    AUDIO_SAMPLE_FORMAT,
    COLOR_MATRIX,
    MAX_DIMENSION,
    MIN_DIMENSION,
    PIXEL_FORMAT,
    add_audio_stream,
    add_video_stream,
    audio_sample_rate,
    open_output,
)

__all__ = [
    "ALLOWED_INPUT_FORMATS",
    "NAMED_COLOURS",
    "RESIZE_MODES",
    "MediaInfo",
    "parse_colour",
    "probe",
    "render_resize",
]

RESIZE_MODES: Final = ("fit", "fill", "stretch", "pad")
"""fit: scale inside W×H keeping aspect, pad centred; fill: scale to cover,
centre-crop; stretch: scale to exactly W×H; pad: like fit but never upscale."""

NAMED_COLOURS: Final[dict[str, str]] = {
    "black": "000000",
    "white": "ffffff",
    "red": "ff0000",
    "green": "008000",
    "blue": "0000ff",
    "gray": "808080",
    "grey": "808080",
}
"""Background colours accepted by name (CSS values); anything else must be #rrggbb."""

ALLOWED_INPUT_FORMATS: Final[frozenset[str]] = frozenset(
    {
        # video containers
        "mov", "mp4", "m4a", "3gp", "matroska", "webm", "avi", "mpegts", "mpeg",
        "flv", "ogg", "asf", "gif", "m4v", "h264", "hevc", "ivf", "mjpeg",
        # audio-only containers (accepted so that probing says "no video stream")
        "wav", "w64", "mp3", "aac", "flac", "aiff", "caf",
    }
)  # fmt: skip
"""Demuxers we let FFmpeg use on inputs (matched against any of a format's names)."""

_HEX_COLOUR = re.compile(r"#([0-9a-fA-F]{6})")
_MAX_FPS = Fraction(240)
_STANDARD_RATES: Final = tuple(
    Fraction(n, d)
    for n, d in (
        (24000, 1001), (24, 1), (25, 1), (30000, 1001), (30, 1),
        (48, 1), (50, 1), (60000, 1001), (60, 1), (120, 1),
    )
)  # fmt: skip
_DEFAULT_FPS = Fraction(25)
_SCALE_FLAGS = "bicubic"


@dataclass(frozen=True)
class MediaInfo:
    """What `probe` learns about a media file (sizes are as displayed)."""

    duration_s: float
    width: int
    height: int
    fps: Fraction
    video_codec: str
    audio_codec: str | None
    sample_rate: int | None
    frame_count: int | None = None

    @property
    def has_audio(self) -> bool:
        """Whether the file has an audio stream."""
        return self.audio_codec is not None


def parse_colour(colour: str) -> str:
    """Validate a background colour and return it as ``0xRRGGBB``.

    Accepts the names in `NAMED_COLOURS` and ``#rrggbb``; raises
    `InvalidInputError` (field "background") for anything else.
    """
    if not isinstance(colour, str):
        raise InvalidInputError(f"must be a string, got {colour!r}", field="background")
    name = colour.strip().lower()
    if name in NAMED_COLOURS:
        return "0x" + NAMED_COLOURS[name]
    match = _HEX_COLOUR.fullmatch(name)
    if match is None:
        raise InvalidInputError(
            f"must be one of {', '.join(sorted(NAMED_COLOURS))} or #rrggbb, got {colour!r}",
            field="background",
        )
    return "0x" + match.group(1)


def _check_dimension(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"must be an integer, got {value!r}", field=name)
    if not MIN_DIMENSION <= value <= MAX_DIMENSION:
        raise InvalidInputError(
            f"must be between {MIN_DIMENSION} and {MAX_DIMENSION}, got {value}",
            field=name,
        )
    if value % 2:
        raise InvalidInputError(f"must be even ({PIXEL_FORMAT} output), got {value}", field=name)
    return value


# --------------------------------------------------------------------------- input


def _open_input(path: Path) -> InputContainer:
    """Open `path` for reading, mapping every failure to `InvalidMediaError`."""
    if not Path(path).is_file():
        raise InvalidMediaError(f"{Path(path).name}: no such file")
    try:
        container = av.open(
            str(path),
            mode="r",
            options={
                "protocol_whitelist": "file",
                "format_whitelist": ",".join(sorted(ALLOWED_INPUT_FORMATS)),
            },
        )
    except av.FFmpegError as exc:
        raise InvalidMediaError(
            f"{Path(path).name}: cannot be opened as a supported media file ({_reason(exc)})"
        ) from exc
    names = set(container.format.name.split(","))
    if not names & ALLOWED_INPUT_FORMATS:  # pragma: no cover - format_whitelist did it
        container.close()
        raise InvalidMediaError(f"{Path(path).name}: unsupported format {container.format.name}")
    return container


def _reason(exc: av.FFmpegError) -> str:
    return str(getattr(exc, "strerror", None) or exc)


def _first_video_stream(container: InputContainer, name: str) -> VideoStream:
    for stream in container.streams.video:
        if not stream.disposition & Disposition.attached_pic:  # skip cover art
            return stream
    raise InvalidMediaError(f"{name}: has no video stream")


def _first_audio_stream(container: InputContainer) -> AudioStream | None:
    return container.streams.audio[0] if container.streams.audio else None


def _frame_rate(stream: VideoStream) -> Fraction:
    """The constant output frame rate for an input stream."""

    def sane(rate: Fraction | None) -> Fraction | None:
        return Fraction(rate) if rate is not None and 0 < rate <= _MAX_FPS else None

    guessed = sane(stream.guessed_rate)
    average = sane(stream.average_rate)
    if guessed is not None and (average is None or abs(guessed - average) <= guessed / 20):
        return guessed
    if average is not None:
        for rate in _STANDARD_RATES:
            if abs(average - rate) <= rate / 1000:
                return rate
        return average.limit_denominator(1001)
    return guessed or _DEFAULT_FPS


def _decoded(
    container: InputContainer, streams: list[VideoStream | AudioStream], name: str
) -> Iterator[VideoFrame | AudioFrame]:
    """Decode the given streams in file order; decoder failures become InvalidMediaError."""
    try:
        for packet in container.demux(*streams):
            for frame in packet.decode():
                if isinstance(frame, VideoFrame | AudioFrame):
                    yield frame
    except av.FFmpegError as exc:
        raise InvalidMediaError(f"{name}: cannot be decoded ({_reason(exc)})") from exc


def _display_geometry(frame: VideoFrame, sar: Fraction | None) -> tuple[int, Fraction, Fraction]:
    """Clockwise rotation to apply, and the displayed width and height."""
    clockwise = round(-frame.rotation / 90) % 4 * 90
    width = Fraction(frame.width) * (sar if sar else 1)
    height = Fraction(frame.height)
    if clockwise in (90, 270):
        width, height = height, width
    return clockwise, width, height


def probe(path: Path) -> MediaInfo:
    """Describe the media file at `path`.

    Decodes the first video frame to make sure the video is decodable. Raises
    `InvalidMediaError` if the file cannot be opened, has no video stream or its
    video cannot be decoded. Width and height are as displayed (rotation and
    pixel aspect applied), rounded to whole pixels.
    """
    name = Path(path).name
    with _open_input(path) as container:
        video = _first_video_stream(container, name)
        audio = _first_audio_stream(container)
        video.thread_type = "AUTO"
        first: VideoFrame | None = None
        for frame in _decoded(container, [video], name):
            if isinstance(frame, VideoFrame):
                first = frame
                break
        if first is None:
            raise InvalidMediaError(f"{name}: video stream has no decodable frames")
        _, width, height = _display_geometry(first, video.sample_aspect_ratio)
        if container.duration is not None and container.duration > 0:
            duration = container.duration / av.time_base
        elif video.duration is not None and video.time_base is not None:
            duration = float(video.duration * video.time_base)
        else:
            duration = 0.0
        return MediaInfo(
            duration_s=duration,
            width=round(width),
            height=round(height),
            fps=_frame_rate(video),
            video_codec=video.codec_context.name,
            audio_codec=audio.codec_context.name if audio is not None else None,
            sample_rate=audio.codec_context.sample_rate if audio is not None else None,
            frame_count=video.frames or None,
        )


# --------------------------------------------------------------------------- video


def _even(value: Fraction | float, lo: int, hi: int) -> int:
    """`value` rounded to the nearest even integer, clamped to [lo, hi]."""
    return min(hi, max(lo, 2 * math.floor(value / 2 + Fraction(1, 2))))


class _Resizer:
    """Turns decoded frames of any size/format into W×H yuv420p frames.

    A small libavfilter graph (rotate → scale → pad/crop → setsar) is built for
    the first frame's geometry and rebuilt if the input geometry ever changes.
    All numbers in the graph are computed here: no caller string reaches it.
    """

    def __init__(self, width: int, height: int, mode: str, colour: str, sar: Fraction | None) -> None:
        self._width = width
        self._height = height
        self._mode = mode
        self._colour = colour
        self._sar = sar if sar else None
        self._graph: av.filter.Graph | None = None
        self._key: tuple[int, int, str, int] | None = None

    def _plan(self, frame: VideoFrame) -> list[tuple[str, str]]:
        clockwise, dw, dh = _display_geometry(frame, self._sar)
        w, h = self._width, self._height
        steps: list[tuple[str, str]] = []
        if clockwise == 90:
            steps.append(("transpose", "dir=clock"))
        elif clockwise == 180:
            steps += [("hflip", ""), ("vflip", "")]
        elif clockwise == 270:
            steps.append(("transpose", "dir=cclock"))
        if self._mode == "stretch":
            sw, sh = w, h
        elif self._mode == "fill":
            scale = max(Fraction(w) / dw, Fraction(h) / dh)
            sw, sh = _even(dw * scale, w, 2 * w), _even(dh * scale, h, 2 * h)
            sw, sh = max(sw, w), max(sh, h)
        else:  # fit / pad
            scale = min(Fraction(w) / dw, Fraction(h) / dh)
            if self._mode == "pad":
                scale = min(scale, Fraction(1))
            sw, sh = _even(dw * scale, 2, w), _even(dh * scale, 2, h)
        steps.append(
            (
                "scale",
                (f"w={sw}:h={sh}:flags={_SCALE_FLAGS}:out_color_matrix={COLOR_MATRIX}:out_range=tv"),
            )
        )
        steps.append(("format", f"pix_fmts={PIXEL_FORMAT}"))
        if (sw, sh) != (w, h):
            if self._mode == "fill":
                x, y = ((sw - w) // 2) & ~1, ((sh - h) // 2) & ~1
                steps.append(("crop", f"w={w}:h={h}:x={x}:y={y}:exact=1"))
            else:
                x, y = ((w - sw) // 2) & ~1, ((h - sh) // 2) & ~1
                steps.append(("pad", f"width={w}:height={h}:x={x}:y={y}:color={self._colour}"))
        steps.append(("setsar", "1"))
        return steps

    def _build(self, frame: VideoFrame) -> av.filter.Graph:
        graph = av.filter.Graph()
        # Single-threaded scaling: bit-exact, and we already run in a process pool.
        graph.threads = 1
        node = graph.add_buffer(
            width=frame.width,
            height=frame.height,
            format=frame.format,
            time_base=frame.time_base or Fraction(1, 1000),
        )
        nodes = [node]
        for filter_name, args in self._plan(frame):
            nodes.append(graph.add(filter_name, args or None))
        nodes.append(graph.add("buffersink"))
        graph.link_nodes(*nodes)
        graph.configure()
        return graph

    def __call__(self, frame: VideoFrame) -> VideoFrame:
        key = (frame.width, frame.height, frame.format.name, frame.rotation)
        if self._graph is None or key != self._key:
            self._graph = self._build(frame)
            self._key = key
        self._graph.vpush(frame)
        return self._graph.vpull()


class _CfrVideoWriter:
    """Encodes frames at a constant rate, duplicating/dropping by timestamp."""

    def __init__(self, container: av.container.OutputContainer, stream: VideoStream) -> None:
        self._container = container
        self._stream = stream
        self._fps = Fraction(stream.codec_context.framerate)
        self._time_base = stream.codec_context.time_base
        self._next = 0
        self._last: VideoFrame | None = None
        self.frames_written = 0

    def _emit(self, frame: VideoFrame) -> None:
        frame.pts = self._next
        frame.time_base = self._time_base
        self._container.mux(self._stream.encode(frame))
        self._next += 1
        self.frames_written += 1

    def write(self, frame: VideoFrame, start: Fraction) -> None:
        """Write `frame`, which is shown from `start` seconds (relative to t0)."""
        slot = math.floor(start * self._fps + Fraction(1, 2))
        if self._last is None:
            slot = max(slot, 0)
            while self._next < slot:  # the video starts late: hold its first frame
                self._emit(frame)
        elif slot < self._next:  # slot already taken: the newer frame wins next time
            self._last = frame
            return
        else:
            while self._next < slot:
                self._emit(self._last)
        self._emit(frame)
        self._last = frame

    def finish(self, end: Fraction) -> None:
        """Hold the last frame until `end` seconds, then flush the encoder."""
        slot = math.floor(end * self._fps + Fraction(1, 2))
        if self._last is not None:
            while self._next < slot:
                self._emit(self._last)
        self._container.mux(self._stream.encode(None))


class _AudioWriter:
    """Resamples decoded audio to the encoder's format and encodes it in fixed frames."""

    def __init__(
        self,
        container: av.container.OutputContainer,
        stream: AudioStream,
        end: Fraction | None,
    ) -> None:
        self._container = container
        self._stream = stream
        ctx = stream.codec_context
        self._rate = ctx.sample_rate
        self._frame_size = ctx.frame_size or 1024
        self._resampler = av.AudioResampler(format=AUDIO_SAMPLE_FORMAT, layout=ctx.layout.name, rate=self._rate)
        self._fifo = av.AudioFifo()
        self._pts: int | None = None
        self._skip = 0
        # The decoder does not trim the encoder padding at the end of the last
        # packet; the container's stream duration says where the audio ends.
        self._end = math.floor(end * self._rate + Fraction(1, 2)) if end is not None and end > 0 else None
        self._done = False

    def write(self, frame: AudioFrame, start: Fraction) -> None:
        """Queue `frame`, which starts at `start` seconds relative to t0."""
        if self._pts is None:
            offset = math.floor(start * self._rate + Fraction(1, 2))
            # Audio that starts before the video is trimmed.
            self._pts = max(0, offset)
            self._skip = max(0, -offset)
        if self._done:
            return
        frame.pts = None
        for out in self._resampler.resample(frame):
            self._queue(out)
        self._drain(final=False)

    def _queue(self, frame: AudioFrame) -> None:
        frame.pts = None
        self._fifo.write(frame)
        if self._skip and self._fifo.samples:
            dropped = self._fifo.read(min(self._skip, self._fifo.samples))
            self._skip -= dropped.samples if dropped is not None else 0

    def _drain(self, *, final: bool) -> None:
        while not self._done and (self._fifo.samples >= self._frame_size or (final and self._fifo.samples)):
            pts = self._pts or 0
            want = self._frame_size
            if self._end is not None and pts + want >= self._end:
                want = self._end - pts
                self._done = True  # this is the last frame we encode
                if want <= 0:
                    break
            chunk = self._fifo.read(want, partial=True)
            if chunk is None:  # pragma: no cover
                break
            chunk.pts = pts
            chunk.time_base = Fraction(1, self._rate)
            self._pts = pts + chunk.samples
            self._container.mux(self._stream.encode(chunk))

    def finish(self) -> None:
        """Flush resampler, FIFO and encoder."""
        if self._pts is not None and not self._done:
            for out in self._resampler.resample(None):
                self._queue(out)
            self._drain(final=True)
        self._container.mux(self._stream.encode(None))


def _stream_end(stream: AudioStream, origin: Fraction | None) -> Fraction | None:
    """Where the container says `stream` ends, in seconds relative to `origin`."""
    if stream.duration is None or stream.time_base is None or stream.duration <= 0:
        return None
    start = stream.start_time or 0
    return (start + stream.duration) * stream.time_base - (origin or Fraction(0))


def _frame_start(frame: VideoFrame | AudioFrame, origin: Fraction) -> Fraction | None:
    if frame.pts is None or frame.time_base is None:
        return None
    return frame.pts * frame.time_base - origin


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
    the shared profile (`services.executor.encoding`) at the input's constant
    frame rate; the first audio stream, if any, is re-encoded to AAC. Only
    `output_path` is written. Returns `probe` of the output.

    Raises `InvalidInputError` for bad width/height/mode/background and
    `InvalidMediaError` for input that cannot be opened or decoded or that has
    no video stream.
    """
    width = _check_dimension("width", width)
    height = _check_dimension("height", height)
    if mode not in RESIZE_MODES:
        raise InvalidInputError(f"must be one of {', '.join(RESIZE_MODES)}, got {mode!r}", field="mode")
    colour = parse_colour(background)
    name = Path(input_path).name

    with _open_input(input_path) as src:
        vin = _first_video_stream(src, name)
        ain = _first_audio_stream(src)
        vin.thread_type = "AUTO"
        fps = _frame_rate(vin)
        origin = (
            Fraction(vin.start_time) * vin.time_base
            if (vin.start_time is not None and vin.time_base is not None)
            else None
        )

        with open_output(output_path) as out:
            vout = add_video_stream(out, width, height, fps)
            aout = None
            if ain is not None:
                channels = ain.codec_context.channels
                aout = add_audio_stream(
                    out,
                    audio_sample_rate(ain.codec_context.sample_rate),
                    "mono" if channels == 1 else "stereo",
                )
            out.start_encoding()
            resize = _Resizer(width, height, mode, colour, vin.sample_aspect_ratio)
            video_writer = _CfrVideoWriter(out, vout)
            audio_writer = (
                _AudioWriter(out, aout, _stream_end(ain, origin)) if aout is not None and ain is not None else None
            )
            video_end = Fraction(0)
            decoded_any = False
            streams: list[VideoStream | AudioStream] = [vin] if ain is None else [vin, ain]

            for frame in _decoded(src, streams, name):
                if isinstance(frame, VideoFrame):
                    if origin is None:
                        origin = (
                            frame.pts * frame.time_base
                            if frame.pts is not None and frame.time_base is not None
                            else Fraction(0)
                        )
                    start = _frame_start(frame, origin)
                    if start is None:
                        start = Fraction(video_writer.frames_written) / fps
                    step = (
                        frame.duration * frame.time_base if frame.duration and frame.time_base is not None else 1 / fps
                    )
                    video_writer.write(resize(frame), start)
                    video_end = max(video_end, start + step)
                    decoded_any = True
                elif audio_writer is not None:
                    start = _frame_start(frame, origin or Fraction(0))
                    audio_writer.write(frame, start if start is not None else Fraction(0))

            if not decoded_any:
                raise InvalidMediaError(f"{name}: video stream has no decodable frames")
            video_writer.finish(video_end)
            if audio_writer is not None:
                audio_writer.finish()

    return probe(output_path)
