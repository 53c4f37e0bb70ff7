"""The input side of the executor's media code: opening, probing and decoding files.

Everything here is plain synchronous code meant to run inside a worker process.
`MediaReader` streams an input's decoded frames in file order with their times
relative to the start of the video; the renderers in `services.executor.primitives`
consume them one frame at a time.

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
from types import TracebackType
from typing import Final

import av
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream
from av.container import InputContainer
from av.stream import Disposition
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from artdag_common.errors import InvalidInputError, InvalidMediaError
from artdag_common.media_limits import InputLimits
from artdag_common.media_types import ALLOWED_DEMUXERS
from services.executor.encoding import MAX_DIMENSION, MIN_DIMENSION, PIXEL_FORMAT

__all__ = [
    "ALLOWED_INPUT_FORMATS",
    "NAMED_COLOURS",
    "RESIZE_MODES",
    "MediaInfo",
    "MediaReader",
    "parse_colour",
    "probe",
    "set_input_limits",
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

ALLOWED_INPUT_FORMATS: Final[frozenset[str]] = ALLOWED_DEMUXERS
"""Demuxers FFmpeg may use on inputs (shared with the analyzer; see `artdag_common.media_types`)."""

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
# What an input may make this process decode (ARTDAG_MAX_INPUT_*): set once per worker process.
_limits = InputLimits()


def set_input_limits(limits: InputLimits) -> None:
    """Apply the configured input limits to every input this process opens (a worker's initializer)."""
    global _limits
    _limits = limits


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


def check_dimension(name: str, value: object) -> int:
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


def open_input(path: Path) -> InputContainer:
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
                **_limits.decoder_options,
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
    try:
        _limits.check_duration(Path(path).name, container.duration / av.time_base if container.duration else None)
    except InvalidMediaError:
        container.close()
        raise
    return container


def _reason(exc: av.FFmpegError) -> str:
    return str(getattr(exc, "strerror", None) or exc)


def first_video_stream(container: InputContainer, name: str) -> VideoStream:
    """The first video stream that is not cover art, its declared size within the input limits."""
    for stream in container.streams.video:
        if not stream.disposition & Disposition.attached_pic:  # skip cover art
            _limits.check_video_stream(name, stream)
            return stream
    raise InvalidMediaError(f"{name}: has no video stream")


def first_audio_stream(container: InputContainer) -> AudioStream | None:
    return container.streams.audio[0] if container.streams.audio else None


def frame_rate(stream: VideoStream) -> Fraction:
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


def decoded(
    container: InputContainer, streams: list[VideoStream | AudioStream], name: str
) -> Iterator[VideoFrame | AudioFrame]:
    """Decode the given streams in file order, each frame within the input limits; decoder
    failures become InvalidMediaError."""
    guard = _limits.guard(name)
    try:
        for packet in container.demux(*streams):
            for frame in packet.decode():
                if isinstance(frame, VideoFrame):
                    guard.video(frame, frame.time)
                elif isinstance(frame, AudioFrame):
                    guard.at(frame.time)
                else:
                    continue
                yield frame
    except av.FFmpegError as exc:
        raise InvalidMediaError(f"{name}: cannot be decoded ({_reason(exc)})") from exc


def display_geometry(frame: VideoFrame, sar: Fraction | None) -> tuple[int, Fraction, Fraction]:
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
    with open_input(path) as container:
        video = first_video_stream(container, name)
        audio = first_audio_stream(container)
        video.thread_type = "AUTO"
        first: VideoFrame | None = None
        for frame in decoded(container, [video], name):
            if isinstance(frame, VideoFrame):
                first = frame
                break
        if first is None:
            raise InvalidMediaError(f"{name}: video stream has no decodable frames")
        _, width, height = display_geometry(first, video.sample_aspect_ratio)
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
            fps=frame_rate(video),
            video_codec=video.codec_context.name,
            audio_codec=audio.codec_context.name if audio is not None else None,
            sample_rate=audio.codec_context.sample_rate if audio is not None else None,
            frame_count=video.frames or None,
        )


class MediaReader:
    """One open input: its first video and audio streams, decoded in file order.

    Times are seconds relative to `origin`, the start of the video stream (or of
    the audio stream when there is no video), so that 0 is the first picture.
    Use as a context manager.
    """

    def __init__(self, path: Path, *, need_video: bool = True) -> None:
        self.name = Path(path).name
        self.container = open_input(Path(path))
        try:
            self.video: VideoStream | None = (
                first_video_stream(self.container, self.name) if need_video or self.container.streams.video else None
            )
        except InvalidMediaError:
            if need_video:
                self.container.close()
                raise
            self.video = None
        self.audio = first_audio_stream(self.container)
        if self.video is None and self.audio is None:
            self.container.close()
            raise InvalidMediaError(f"{self.name}: has neither video nor audio")
        if self.video is not None:
            self.video.thread_type = "AUTO"
        self.fps = frame_rate(self.video) if self.video is not None else _DEFAULT_FPS
        main = self.video if self.video is not None else self.audio
        assert main is not None
        self.origin = (
            Fraction(main.start_time) * main.time_base
            if main.start_time is not None and main.time_base is not None
            else Fraction(0)
        )

    def __enter__(self) -> MediaReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the container (idempotent)."""
        self.container.close()

    def stream_end(self, stream: VideoStream | AudioStream | None) -> Fraction | None:
        """Where the container says `stream` ends, relative to `origin`, or None."""
        if stream is None or stream.duration is None or stream.time_base is None or stream.duration <= 0:
            return None
        start = stream.start_time or 0
        return (start + stream.duration) * stream.time_base - self.origin

    @property
    def duration(self) -> Fraction:
        """Best known duration of the main stream (video, else audio) in seconds."""
        end = self.stream_end(self.video if self.video is not None else self.audio)
        if end is None and self.container.duration is not None and self.container.duration > 0:
            end = Fraction(self.container.duration, av.time_base)
        return end if end is not None else Fraction(0)

    def time_of(self, frame: VideoFrame | AudioFrame) -> Fraction | None:
        """A decoded frame's start in seconds relative to `origin`, if it has a timestamp."""
        if frame.pts is None or frame.time_base is None:
            return None
        return frame.pts * frame.time_base - self.origin

    def seek(self, seconds: Fraction, *, rewind: bool = False) -> None:
        """Position the demuxer at the keyframe at or before `seconds`.

        At 0 or before this is a no-op for a fresh reader; `rewind` goes back to the start
        of a reader that has already read on.
        """
        if seconds <= 0 and rewind:
            try:
                self.container.seek(0)
            except av.FFmpegError as exc:
                raise InvalidMediaError(f"{self.name}: cannot seek ({_reason(exc)})") from exc
            return
        if seconds <= 0 or self.video is None or self.video.time_base is None:
            return
        target = math.floor((seconds + self.origin) / self.video.time_base)
        try:
            self.container.seek(target, backward=True, any_frame=False, stream=self.video)
        except av.FFmpegError as exc:
            raise InvalidMediaError(f"{self.name}: cannot seek ({_reason(exc)})") from exc

    def frames(self, *, video: bool = True, audio: bool = True) -> Iterator[VideoFrame | AudioFrame]:
        """Decoded frames of the selected streams in file order."""
        streams: list[VideoStream | AudioStream] = []
        if video and self.video is not None:
            streams.append(self.video)
        if audio and self.audio is not None:
            streams.append(self.audio)
        if streams:
            yield from decoded(self.container, streams, self.name)
