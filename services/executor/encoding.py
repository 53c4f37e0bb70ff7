"""The one place where output encoder settings live.

Every writer in the executor opens its output through `open_output` and adds its
streams through `add_video_stream` / `add_audio_stream`, so that every rendered
file is produced with the same settings and — given the same input — the same
bytes. Measured facts this module relies on:

* libx264 output is byte-identical run-to-run only for a fixed thread count, so
  the thread count is pinned on the codec context *and* in the x264 options
  (otherwise x264 picks "auto" from the host's CPU count).
* The MP4 muxer writes an ``encoder=Lavf…`` tag unless ``fflags=+bitexact`` is
  set on the container; ``flags=+bitexact`` on the codec contexts keeps the
  encoders from writing their own version strings where they can.
* No creation time is written unless one is asked for, and nothing here asks.

`ENCODER_FINGERPRINT` summarises library versions and profile settings; callers
mix it into cache ids so that a change of encoder invalidates cached renders.

A step's *hand-off* (decided by the planner, part of its step id) picks the profile:
``deliver`` (the run's output: lossy H.264 + AAC), ``part`` (lossy H.264 that a
later step copies packet for packet into a delivered file, with lossless FLAC
sound that the copying step encodes once) and ``lossless`` (x264 ``qp=0`` + FLAC:
an intermediate that a later step decodes, so that every delivered frame passes
the lossy encoder once). Renderers never pick one: `run_operation` makes the
step's profile the active one (`active_profile`) for the whole render.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import av
import av.codec.context
from av.audio.stream import AudioStream
from av.container import OutputContainer
from av.video.stream import VideoStream

from artdag_common.media_types import LOSSLESS_H264_PROFILE
from artdag_common.operations import GOP_FRAMES

VIDEO_CODEC = "libx264"
"""Encoder used for every video stream we write."""

AUDIO_CODEC = "aac"
"""Encoder used for every audio stream we write (FFmpeg's native AAC encoder)."""

CONTAINER_FORMAT = "mp4"
"""Muxer used for every file with video we write."""

AUDIO_CONTAINER_FORMAT = "ipod"
"""Muxer used for audio-only files: MP4 whose ftyp brand is ``M4A ``."""

PIXEL_FORMAT = "yuv420p"
"""Pixel format of every video stream we write (the browser-safe one)."""

AUDIO_SAMPLE_FORMAT = "fltp"
"""Sample format the AAC encoder takes."""

AAC_SAMPLE_RATES: frozenset[int] = frozenset(
    {8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000}
)
"""Sample rates AAC can carry; anything else is resampled to the profile default."""

MIN_DIMENSION = 16
"""Smallest width or height we agree to encode."""

MAX_DIMENSION = 8192
"""Largest width or height we agree to encode."""

COLOR_MATRIX = "bt709"
"""Colour matrix of every video stream we write (tagged BT.709, limited range).

Writers must hand the encoder BT.709 limited-range yuv420p frames, e.g. with
``frame.reformat(format=PIXEL_FORMAT, dst_colorspace=COLOR_MATRIX, dst_color_range="tv")``
or a ``scale=...:out_color_matrix=bt709:out_range=tv`` filter.
"""

# AVColorSpace / AVColorPrimaries / AVColorTransferCharacteristic / AVColorRange values.
_AVCOL_BT709 = 1
_AVCOL_RANGE_MPEG = 1

_BITEXACT = int(av.codec.context.Flags.bitexact)


@dataclass(frozen=True)
class OutputProfile:
    """Encoder settings for rendered output: H.264 High/yuv420p + AAC in MP4."""

    container_format: str = CONTAINER_FORMAT
    audio_container_format: str = AUDIO_CONTAINER_FORMAT
    video_codec: str = VIDEO_CODEC
    pixel_format: str = PIXEL_FORMAT
    h264_profile: str = "high"
    crf: int = 18
    preset: str = "veryfast"
    gop_size: int = GOP_FRAMES
    threads: int = 2
    audio_codec: str = AUDIO_CODEC
    audio_bit_rate: int = 192_000
    aac_coder: str = "fast"
    default_sample_rate: int = 48_000
    lossless: bool = False
    audio_sample_format: str = AUDIO_SAMPLE_FORMAT

    def container_options(self) -> dict[str, str]:
        """Muxer options: web-friendly layout, no version tags."""
        return {"movflags": "+faststart", "fflags": "+bitexact"}

    def x264_params(self) -> str:
        """The ``x264-params`` string: fixed GOP, no scene cuts, pinned threads, no macroblock tree.

        ``mbtree=0``: with the macroblock tree on, identical frames encoded in
        the same process gave different bytes depending on heap contents
        (measured with PyAV 18.1's x264; off, 20 of 20 runs were identical).
        ``stitchable=1``: headers do not depend on the content, so that parts encoded
        apart (slices, chunks) have identical parameter sets and join by stream copy.
        """
        return (
            f"keyint={self.gop_size}:min-keyint={self.gop_size}:scenecut=0:mbtree=0"
            f":open-gop=0:threads={self.threads}:lookahead-threads=1:sliced-threads=0:stitchable=1"
        )

    def video_options(self) -> dict[str, str]:
        """Codec options for the video encoder."""
        quality = {"qp": "0"} if self.lossless else {"crf": str(self.crf), "profile": self.h264_profile}
        return {
            "preset": self.preset,
            **quality,
            "threads": str(self.threads),
            "flags": "+bitexact",
            "x264-params": self.x264_params(),
        }

    def audio_options(self) -> dict[str, str]:
        """Codec options for the audio encoder."""
        if self.audio_codec == "flac":
            return {"flags": "+bitexact", "threads": "1"}
        return {"flags": "+bitexact", "threads": "1", "aac_coder": self.aac_coder}

    def describe(self) -> str:
        """A stable one-line description of every setting, for fingerprints."""
        return (
            f"{self.container_format}|{self.audio_container_format}/{self.video_codec}:{self.pixel_format}"
            f":{COLOR_MATRIX}-tv:profile={self.h264_profile}:crf={self.crf}"
            f":preset={self.preset}:gop={self.gop_size}:{self.x264_params()}"
            f"/{self.audio_codec}:b={self.audio_bit_rate}:coder={self.aac_coder}"
            f":ar={self.default_sample_rate}:lossless={int(self.lossless)}"
        )


PROFILE = OutputProfile()
"""The delivery profile: what a run's output (and any download of a render) is encoded with."""

PART_PROFILE = replace(PROFILE, audio_codec="flac", audio_sample_format="s16", audio_bit_rate=0)
"""Delivery video that a later step copies into a delivered file; its sound stays lossless."""

LOSSLESS_PROFILE = replace(PART_PROFILE, lossless=True, preset="ultrafast")
"""An intermediate a later step decodes: x264 ``qp=0`` (bit-exact pictures) and FLAC."""

PROFILES: dict[str, OutputProfile] = {"deliver": PROFILE, "part": PART_PROFILE, "lossless": LOSSLESS_PROFILE}
"""The profile of each hand-off (see the module docstring)."""

_active: ContextVar[OutputProfile] = ContextVar("artdag_output_profile", default=PROFILE)


def active_profile() -> OutputProfile:
    """The profile of the step being rendered (the delivery profile outside `rendering_with`)."""
    return _active.get()


@contextlib.contextmanager
def rendering_with(profile: OutputProfile) -> Iterator[None]:
    """Make `profile` the one every writer uses until the block ends."""
    token = _active.set(profile)
    try:
        yield
    finally:
        _active.reset(token)


def is_lossless_stream(codec_name: str, h264_profile: str | None) -> bool:
    """Whether a video stream is one of our lossless intermediates (lossless H.264)."""
    return codec_name == "h264" and h264_profile == LOSSLESS_H264_PROFILE


def copies_into_output(codec_name: str, pix_fmt: str | None, h264_profile: str | None) -> bool:
    """Whether a video stream's packets may go into what the active profile writes, as they are.

    H.264 yuv420p of the same kind: lossy into a delivered file or a part, lossless into a
    lossless intermediate (a lossless stream is never delivered, nor lossy video stored as lossless).
    """
    if codec_name != "h264" or pix_fmt != PIXEL_FORMAT:
        return False
    return is_lossless_stream(codec_name, h264_profile) == active_profile().lossless


def validate_dimensions(width: int, height: int) -> None:
    """Raise `ValueError` unless width and height are even and in range.

    yuv420p subsamples chroma 2x2, so both dimensions must be even. A value that
    is not an int at all raises `TypeError`.
    """
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an integer, got {value!r}")
        if not MIN_DIMENSION <= value <= MAX_DIMENSION:
            raise ValueError(f"{name} must be between {MIN_DIMENSION} and {MAX_DIMENSION}, got {value}")
        if value % 2:
            raise ValueError(f"{name} must be even for {PIXEL_FORMAT}, got {value}")


def audio_sample_rate(input_rate: int | None, profile: OutputProfile | None = None) -> int:
    """The output sample rate for an input rate: kept if AAC carries it, else the default.

    Every profile keeps to AAC's rates, so that a part's sound can be encoded for delivery as it is.
    """
    if input_rate is not None and input_rate in AAC_SAMPLE_RATES:
        return input_rate
    return (profile or active_profile()).default_sample_rate


def open_output(path: Path | str, profile: OutputProfile | None = None, *, audio_only: bool = False) -> OutputContainer:
    """Open `path` for writing with the profile's container settings.

    Use as a context manager (``with open_output(p) as out: ...``). Metadata is
    left empty, so nothing from any input is carried into the file. An
    `audio_only` file is written as M4A (see `AUDIO_CONTAINER_FORMAT`).
    """
    profile = profile or active_profile()
    container = av.open(
        str(path),
        mode="w",
        format=profile.audio_container_format if audio_only else profile.container_format,
        container_options=profile.container_options(),
    )
    container.metadata.clear()
    return container


def add_video_stream(
    container: OutputContainer,
    width: int,
    height: int,
    fps: Fraction,
    profile: OutputProfile | None = None,
) -> VideoStream:
    """Add an H.264 stream of `width`x`height` at constant `fps` to `container`.

    Frames sent to it must be BT.709 limited-range `PIXEL_FORMAT` (see
    `COLOR_MATRIX`) with ``pts`` counted in units of ``1/fps`` (the codec time
    base). Raises `ValueError` on odd or out-of-range
    dimensions or a non-positive frame rate.
    """
    profile = profile or active_profile()
    validate_dimensions(width, height)
    fps = Fraction(fps)
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    stream = container.add_stream(profile.video_codec, rate=fps, options=profile.video_options())
    if not isinstance(stream, VideoStream):  # pragma: no cover - a misconfigured profile
        raise TypeError(f"{profile.video_codec} is not a video encoder")
    ctx = stream.codec_context
    ctx.width = width
    ctx.height = height
    ctx.pix_fmt = profile.pixel_format
    ctx.time_base = 1 / fps
    ctx.framerate = fps
    ctx.gop_size = profile.gop_size
    ctx.thread_count = profile.threads
    ctx.thread_type = "SLICE" if profile.threads > 1 else "NONE"
    ctx.flags = ctx.flags | _BITEXACT
    ctx.sample_aspect_ratio = Fraction(1, 1)
    ctx.colorspace = _AVCOL_BT709
    ctx.color_primaries = _AVCOL_BT709
    ctx.color_trc = _AVCOL_BT709
    ctx.color_range = _AVCOL_RANGE_MPEG
    stream.time_base = 1 / fps
    stream.metadata.clear()
    return stream


def add_audio_stream(
    container: OutputContainer,
    sample_rate: int,
    layout: str,
    profile: OutputProfile | None = None,
) -> AudioStream:
    """Add an AAC stream at `sample_rate` with channel `layout` (e.g. "stereo").

    Frames sent to it must be in the profile's ``audio_sample_format`` with the encoder's
    ``frame_size`` samples (the last one may be shorter) and ``pts`` counted in
    samples. Raises `ValueError` for a rate AAC cannot carry.
    """
    profile = profile or active_profile()
    if sample_rate not in AAC_SAMPLE_RATES:
        raise ValueError(f"AAC cannot carry a sample rate of {sample_rate} Hz")
    stream = container.add_stream(profile.audio_codec, rate=sample_rate, options=profile.audio_options())
    if not isinstance(stream, AudioStream):  # pragma: no cover - a misconfigured profile
        raise TypeError(f"{profile.audio_codec} is not an audio encoder")
    ctx = stream.codec_context
    ctx.sample_rate = sample_rate
    ctx.layout = layout
    ctx.format = profile.audio_sample_format
    if profile.audio_bit_rate:
        ctx.bit_rate = profile.audio_bit_rate
    ctx.time_base = Fraction(1, sample_rate)
    ctx.thread_count = 1
    ctx.flags = ctx.flags | _BITEXACT
    stream.time_base = Fraction(1, sample_rate)
    stream.metadata.clear()
    return stream


def _x264_build() -> str:
    """The libx264 build string, read from the SEI it writes into its first packet."""
    try:
        ctx = av.codec.context.CodecContext.create("libx264", "w")
        ctx.width = 16
        ctx.height = 16
        ctx.pix_fmt = PIXEL_FORMAT
        ctx.time_base = Fraction(1, 25)
        ctx.thread_count = 1
        ctx.options = {"preset": "ultrafast", "threads": "1"}
        ctx.open()
        frame = av.VideoFrame(16, 16, PIXEL_FORMAT)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.pts = 0
        data = b"".join(bytes(p) for p in [*ctx.encode(frame), *ctx.encode(None)])
    except (av.FFmpegError, ValueError):  # pragma: no cover - a broken install
        return "unknown"
    match = re.search(rb"x264 - core (\d+)(?: r(\d+) ([0-9a-f]+))?", data)
    if match is None:  # pragma: no cover
        return "unknown"
    return "-".join(part.decode() for part in match.groups() if part)


def _fingerprint(profile: OutputProfile) -> str:
    libs = av.library_versions
    lib_part = ",".join(
        f"{name}={'.'.join(str(v) for v in libs[name])}"
        for name in (
            "libavcodec",
            "libavformat",
            "libavfilter",
            "libswscale",
            "libswresample",
        )
        if name in libs
    )
    return (
        f"pyav={av.__version__};ffmpeg={av.ffmpeg_version_info};{lib_part};"
        f"x264={_x264_build()};profile={profile.describe()}"
    )


ENCODER_FINGERPRINT: str = _fingerprint(PROFILE)
"""Library versions + profile settings; mix into cache ids of rendered outputs."""
