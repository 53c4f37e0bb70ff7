"""Open media safely and stream it once: mono audio blocks and small RGB frames.

One demux pass feeds both the audio and the video consumers, so a file with both
streams is read once. Nothing here keeps more than a block of samples or one frame.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from artdag_common.errors import InvalidMediaError
from artdag_common.media_limits import InputLimits
from artdag_common.media_types import ALLOWED_DEMUXERS

if TYPE_CHECKING:
    import av.audio.stream
    import av.container
    import av.video.stream

SAMPLE_RATE = 22_050
"""Rate (Hz) every audio stream is resampled to, mono, before analysis."""
FRAME_SIZE = (160, 90)
"""Width and height every video frame is scaled to for scene and motion analysis."""
_AUDIO_BLOCK = 1 << 15  # samples handed to the audio consumer at once (≈1.5 s)
_RESAMPLE_BATCH = 1 << 14  # decoded samples resampled at once
_QUICK_PROBE_BYTES = 1 << 16
_PROGRESS_EVERY_S = 0.25

FloatArray = npt.NDArray[np.float32]
U8Array = npt.NDArray[np.uint8]
AudioConsumer = Callable[[FloatArray], None]
VideoConsumer = Callable[[U8Array, float], None]


@dataclass(frozen=True)
class Streams:
    """The first audio stream and the first real video stream (cover art skipped) of a container."""

    audio: av.audio.stream.AudioStream | None
    video: av.video.stream.VideoStream | None
    duration: float  # container duration in seconds, 0 if unknown


def open_media(path: str, limits: InputLimits = InputLimits()) -> av.container.InputContainer:
    """Open `path` for reading (local files only) and check that its demuxer is one artdag accepts
    and its duration is within `limits` (its streams are probed with decoders capped by them)."""
    import av

    options = {"protocol_whitelist": "file", **limits.decoder_options}
    try:
        # FFmpeg's default probe decodes 5 MB, 50 ms of a 30 s WAV's analysis; headers rarely need more than
        # a quick look. When the quick look leaves a stream's parameters unknown, probe again in full.
        container = av.open(path, options={**options, "probesize": str(_QUICK_PROBE_BYTES)})
        if not _fully_probed(container):
            container.close()
            container = av.open(path, options=options)
    except (av.FFmpegError, OSError) as exc:
        raise InvalidMediaError(f"cannot open media: {exc}") from None
    names = set(container.format.name.split(","))
    if not names & ALLOWED_DEMUXERS:
        container.close()
        raise InvalidMediaError(f"unsupported container format {container.format.name!r}")
    try:
        limits.check_duration("input", container.duration / av.time_base if container.duration else None)
    except InvalidMediaError:
        container.close()
        raise
    return container


def _fully_probed(container: av.container.InputContainer) -> bool:
    """Whether every audio and video stream came out of the probe with its rate, channels or size known."""
    streams = list(container.streams.audio) + list(container.streams.video)
    if not streams:
        return False
    audio_known = all(s.codec_context.sample_rate and s.codec_context.channels for s in container.streams.audio)
    video_known = all(s.codec_context.width and s.codec_context.height for s in container.streams.video)
    return audio_known and video_known


def find_streams(container: av.container.InputContainer) -> Streams:
    """Pick the streams to analyse."""
    import av

    video = next((s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic), None)
    audio = container.streams.audio[0] if container.streams.audio else None
    duration = float(container.duration / av.time_base) if container.duration else 0.0
    return Streams(audio=audio, video=video, duration=duration)


class _Progress:
    """Throttles progress reports to a few per second of work."""

    def __init__(self, report: Callable[[float], None] | None, duration: float) -> None:
        self.report = report
        self.duration = duration
        self.last = time.monotonic()

    def update(self, seconds: float) -> None:
        if self.report is None or self.duration <= 0:
            return
        now = time.monotonic()
        if now - self.last >= _PROGRESS_EVERY_S:
            self.last = now
            self.report(min(0.99, max(0.0, seconds / self.duration)))


def stream_media(
    container: av.container.InputContainer,
    streams: Streams,
    *,
    on_audio: AudioConsumer | None,
    on_video: VideoConsumer | None,
    progress: Callable[[float], None] | None = None,
    limits: InputLimits = InputLimits(),
) -> None:
    """Decode the selected streams once, feeding mono float32 blocks at `SAMPLE_RATE` and RGB24 frames.

    `on_video` receives each frame as a (90, 160, 3) uint8 array and its time in seconds.
    Decoding errors, and frames beyond `limits`, become `InvalidMediaError` saying where they happened.
    """
    import av

    selected: list[av.audio.stream.AudioStream | av.video.stream.VideoStream] = []
    if on_audio is not None and streams.audio is not None:
        selected.append(streams.audio)
    if on_video is not None and streams.video is not None:
        limits.check_video_stream("input", streams.video)
        streams.video.thread_type = "AUTO"
        selected.append(streams.video)
    if not selected:
        return
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    # Decoded frames are small (1152 samples of MP3): resampling them in batches costs half as much.
    fifo = av.AudioFifo()
    pending: list[FloatArray] = []
    pending_len = 0
    frame_index = 0
    rate = float(streams.video.average_rate) if streams.video is not None and streams.video.average_rate else 25.0
    tracker = _Progress(progress, streams.duration)
    guard = limits.guard("input")
    width, height = FRAME_SIZE
    seconds_per_tick = {id(s): float(s.time_base) if s.time_base else 0.0 for s in selected}

    def emit_audio(frames: list[av.AudioFrame]) -> None:
        nonlocal pending_len
        assert on_audio is not None
        for out in frames:
            samples = out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
            pending.append(samples)
            pending_len += samples.size
        if pending_len >= _AUDIO_BLOCK:
            on_audio(np.concatenate(pending))
            pending.clear()
            pending_len = 0

    def take_audio(frame: av.AudioFrame | None) -> None:
        """Queue a decoded frame; resample the queue once it holds a batch (or when `frame` is None)."""
        if frame is not None:
            frame.pts = None  # the FIFO checks timestamps for gaps; a stream's own jitter is not an error here
            try:
                fifo.write(frame)
            except ValueError:  # the stream changed its sample format, layout or rate midway
                raise InvalidMediaError(f"the audio format changes near {position:.2f} s") from None
            if fifo.samples < _RESAMPLE_BATCH:
                return
        batch = fifo.read()
        if batch is not None:
            emit_audio(resampler.resample(batch))

    position = 0.0
    try:
        for packet in container.demux(selected):
            tick = seconds_per_tick.get(id(packet.stream), 0.0)
            if packet.pts is not None:
                position = packet.pts * tick
            for frame in packet.decode():
                if isinstance(frame, av.AudioFrame):
                    guard.at(None if frame.pts is None else frame.pts * tick)
                    take_audio(frame)
                elif isinstance(frame, av.VideoFrame):
                    assert on_video is not None
                    guard.video(frame, frame.time)
                    small = frame.reformat(width=width, height=height, format="rgb24")
                    when = frame.time if frame.time is not None else frame_index / rate
                    on_video(small.to_ndarray().astype(np.uint8, copy=False), float(when))
                    frame_index += 1
            tracker.update(position)
        if on_audio is not None and streams.audio is not None:
            take_audio(None)
            emit_audio(resampler.resample(None))
    except av.FFmpegError as exc:
        raise InvalidMediaError(f"cannot decode media near {position:.2f} s: {exc}") from None
    if on_audio is not None and pending:
        on_audio(np.concatenate(pending))
