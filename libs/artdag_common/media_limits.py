"""Bounds on what an input may make a decoder do: pixels a frame, seconds, frames.

A tiny file can declare huge pictures (a 200 KB H.264 stream of 16000x16000 frames asks
for 384 MB a picture, several at once with frame threads). Every place that opens media
for decoding goes through here: the declared size is checked before the first frame is
decoded, FFmpeg itself is told the limit (``max_pixels``: its decoders refuse a bigger
picture before allocating it, also while `av.open` probes the streams), and each decoded
frame is checked again, since a stream can change size after its header.

Plain synchronous code; the callers open the files and hand in streams and frames.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from artdag_common.errors import InvalidMediaError

if TYPE_CHECKING:
    from av.video.stream import VideoStream

    from artdag_common.settings import CommonSettings

DEFAULT_MAX_PIXELS = 7680 * 4320
"""8K UHD: about 50 MB a decoded 4:2:0 picture."""
DEFAULT_MAX_DURATION_S = 4 * 3600.0
DEFAULT_MAX_FRAMES = 4 * 3600 * 60
"""Four hours at 60 frames a second."""
# FFmpeg checks its limit against the stride-aligned width: leave it room above ours.
_FFMPEG_SLACK = 8
MAX_DECODE_THREADS = 4
"""Frame threads a decoder may use: each allocates a stream's per-picture tables (up to ~80 MB
for a stream that switches to 16000x16000 after its header) before FFmpeg meets the pixel cap."""


class _Sized(Protocol):
    @property
    def width(self) -> int: ...

    @property
    def height(self) -> int: ...


@dataclass(frozen=True)
class InputLimits:
    """The input limits of `CommonSettings` (``ARTDAG_MAX_INPUT_*``), and the checks that apply them."""

    max_pixels: int = DEFAULT_MAX_PIXELS
    max_duration_s: float = DEFAULT_MAX_DURATION_S
    max_frames: int = DEFAULT_MAX_FRAMES

    @classmethod
    def of(cls, settings: CommonSettings) -> InputLimits:
        """The limits a service was configured with."""
        return cls(settings.max_input_pixels, settings.max_input_duration_s, settings.max_input_frames)

    @property
    def decoder_options(self) -> dict[str, str]:
        """FFmpeg options that make its decoders refuse pictures over the limit before allocating them.

        For `av.open(options=...)` (the decoders that probe streams get them) and for a codec
        context's `options` before its first decode.
        """
        return {"max_pixels": str(self.max_pixels + self.max_pixels // _FFMPEG_SLACK)}

    def excess(
        self,
        *,
        width: int | None = None,
        height: int | None = None,
        duration_s: float | None = None,
        frames: int | None = None,
    ) -> str | None:
        """What of these declared figures is over a limit, said for a person; None when all are within."""
        if width and height and width * height > self.max_pixels:
            return f"{width}x{height} frames are over the limit of {self.max_pixels:,} pixels (ARTDAG_MAX_INPUT_PIXELS)"
        if duration_s is not None and duration_s > self.max_duration_s:
            return (
                f"{duration_s:,.0f} s is over the limit of {self.max_duration_s:,.0f} s (ARTDAG_MAX_INPUT_DURATION_S)"
            )
        if frames is not None and frames > self.max_frames:
            return f"{frames:,} frames are over the limit of {self.max_frames:,} (ARTDAG_MAX_INPUT_FRAMES)"
        return None

    def check_video_stream(self, name: str, stream: VideoStream) -> None:
        """Before decoding: the stream's declared size, coded size and frame count within the limits;
        then its decoder capped (pixels, threads). Raises `InvalidMediaError` naming the limit."""
        context = stream.codec_context
        declared_frames = stream.frames or None
        for width, height in ((context.width, context.height), (context.coded_width, context.coded_height)):
            reason = self.excess(width=width, height=height, frames=declared_frames)
            if reason is not None:
                raise InvalidMediaError(f"{name}: {reason}")
        if not context.is_open:
            context.options = {**context.options, **self.decoder_options}
            context.thread_count = min(os.cpu_count() or 1, MAX_DECODE_THREADS)

    def check_duration(self, name: str, duration_s: float | None) -> None:
        """A container's (or an audio stream's) declared duration within the limit."""
        reason = self.excess(duration_s=duration_s)
        if reason is not None:
            raise InvalidMediaError(f"{name}: {reason}")

    def guard(self, name: str) -> DecodeGuard:
        """A checker for the frames of one decoding pass."""
        return DecodeGuard(self, name)


class DecodeGuard:
    """Checks each decoded frame of one pass: its size (a stream may change it after its header),
    how many video frames came, and how far apart in time the first and the last are."""

    def __init__(self, limits: InputLimits, name: str) -> None:
        self.limits = limits
        self.name = name
        self.video_frames = 0
        self._first_s: float | None = None

    def video(self, frame: _Sized, time_s: float | None) -> None:
        """A decoded video frame: raises `InvalidMediaError` once it is over a limit."""
        self.video_frames += 1
        reason = self.limits.excess(width=frame.width, height=frame.height, frames=self.video_frames)
        if reason is not None:
            raise InvalidMediaError(f"{self.name}: {reason}")
        self.at(time_s)

    def at(self, time_s: float | None) -> None:
        """A decoded frame's time (audio or video): the span decoded so far stays within the duration limit."""
        if time_s is None:
            return
        if self._first_s is None:
            self._first_s = time_s
        self.limits.check_duration(self.name, time_s - self._first_s)
