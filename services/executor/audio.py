"""The audio side of the executor: resampling, alignment, tempo, mixing and encoding.

Audio travels as (channels, samples) float32 arrays at the output rate, laid end
to end from output time 0. `SampleAligner` turns decoded frames into such
arrays (leading silence when the audio starts late, trimming when it starts
early or runs past its end); `AudioWriter` encodes arrays in the AAC encoder's
frame size; `AudioTimeline` accumulates overlapping contributions (crossfades)
and hands finished stretches to a writer. Memory stays bounded by how far
ahead of the flush point contributions arrive.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import av
import av.error
import av.filter
import numpy as np
import numpy.typing as npt
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream
from av.container import OutputContainer

from artdag_common.errors import InvalidMediaError
from services.executor.encoding import (
    AUDIO_CODEC,
    AUDIO_SAMPLE_FORMAT,
    active_profile,
    add_audio_stream,
    audio_sample_rate,
)
from services.executor.frames import fmt
from services.executor.media import MediaReader, first_audio_stream, open_input

F32 = npt.NDArray[np.float32]


def layout_for(channels: int) -> str:
    """The output channel layout for an input channel count (mono stays mono, else stereo)."""
    return "mono" if channels == 1 else "stereo"


def add_audio_like(container: OutputContainer, reader: MediaReader) -> AudioStream | None:
    """An output AAC stream matching `reader`'s first audio stream, or None if it has none."""
    if reader.audio is None:
        return None
    ctx = reader.audio.codec_context
    return add_audio_stream(container, audio_sample_rate(ctx.sample_rate), layout_for(ctx.channels))


def seconds_to_samples(seconds: Fraction, rate: int) -> int:
    """Sample index of `seconds` (rounded half up)."""
    return math.floor(seconds * rate + Fraction(1, 2))


class SampleAligner:
    """Resamples decoded frames to float32 arrays laid end to end from output time 0.

    The first frame's start fixes the alignment (later frames are taken as
    contiguous); audio before 0 is dropped, a late start is preceded by
    silence, and nothing is produced past `end` seconds.
    """

    def __init__(self, rate: int, layout: str, end: Fraction | None = None) -> None:
        self.rate = rate
        self.layout = layout
        self.channels = 1 if layout == "mono" else 2
        self._resampler = av.AudioResampler(format=AUDIO_SAMPLE_FORMAT, layout=layout, rate=rate)
        self._skip: int | None = None
        self.position = 0
        self.end = seconds_to_samples(end, rate) if end is not None and end > 0 else None

    @property
    def done(self) -> bool:
        """Whether `end` has been reached."""
        return self.end is not None and self.position >= self.end

    def push(self, frame: AudioFrame | None, start: Fraction = Fraction(0)) -> list[F32]:
        """Arrays for `frame` (None flushes the resampler)."""
        out: list[F32] = []
        if frame is not None and self._skip is None:
            offset = seconds_to_samples(start, self.rate)
            self._skip = max(0, -offset)
            if offset > 0:
                out.extend(self._take(np.zeros((self.channels, offset), dtype=np.float32)))
        if frame is not None:
            frame.pts = None
        if frame is None and self._skip is None:
            return out
        for part in self._resampler.resample(frame):
            out.extend(self._take(np.asarray(part.to_ndarray(), dtype=np.float32)))
        return out

    def _take(self, samples: F32) -> list[F32]:
        if self._skip:
            dropped = min(self._skip, samples.shape[1])
            samples = samples[:, dropped:]
            self._skip -= dropped
        if self.end is not None:
            samples = samples[:, : max(0, self.end - self.position)]
        self.position += samples.shape[1]
        return [samples] if samples.shape[1] else []


class AudioWriter:
    """Encodes audio into an AAC (or, for intermediates, FLAC) stream in encoder-sized frames with ``pts`` in samples.

    `write` takes decoded frames (aligned with a `SampleAligner`); `write_array`
    takes ready (channels, n) float32 arrays at the stream's rate. Audio past
    `end` seconds is dropped.
    """

    def __init__(self, container: OutputContainer, stream: AudioStream, end: Fraction | None = None) -> None:
        self._container = container
        self._stream = stream
        ctx = stream.codec_context
        self.rate = ctx.sample_rate
        self.layout = ctx.layout.name
        self._frame_size = ctx.frame_size or 1024
        self._format = ctx.format.name
        self._aligner = SampleAligner(self.rate, self.layout, end)
        self._pending: list[F32] = []
        self._pending_samples = 0
        self._pts = 0

    @property
    def done(self) -> bool:
        """Whether the end has been reached (no more audio is wanted)."""
        return self._aligner.done

    def write(self, frame: AudioFrame, start: Fraction) -> None:
        """Queue a decoded `frame` that starts `start` seconds into the output."""
        if not self.done:
            for samples in self._aligner.push(frame, start):
                self._queue(samples)

    def write_array(self, samples: F32) -> None:
        """Queue (channels, n) float32 samples, contiguous with what came before."""
        self._queue(samples)

    def _queue(self, samples: F32) -> None:
        if samples.shape[1] == 0:
            return
        self._pending.append(samples)
        self._pending_samples += samples.shape[1]
        if self._pending_samples >= self._frame_size:
            self._drain(final=False)

    def _drain(self, *, final: bool) -> None:
        if not self._pending:
            return
        data = np.concatenate(self._pending, axis=1) if len(self._pending) > 1 else self._pending[0]
        used = 0
        total = data.shape[1]
        while total - used >= self._frame_size or (final and used < total):
            count = min(self._frame_size, total - used)
            frame = self._frame(data[:, used : used + count])
            frame.sample_rate = self.rate
            frame.pts = self._pts
            frame.time_base = Fraction(1, self.rate)
            self._container.mux(self._stream.encode(frame))
            self._pts += count
            used += count
        rest = data[:, used:]
        self._pending = [rest] if rest.shape[1] else []
        self._pending_samples = rest.shape[1]

    def _frame(self, samples: F32) -> AudioFrame:
        if self._format == "s16":  # a lossless (FLAC) stream: packed 16-bit, rounded the same way every time
            scaled = np.clip(np.rint(samples * 32768.0), -32768, 32767).astype(np.int16)
            packed = np.ascontiguousarray(scaled.T.reshape(1, -1))
            return AudioFrame.from_ndarray(packed, format="s16", layout=self.layout)
        chunk = np.ascontiguousarray(samples, dtype=np.float32)
        return AudioFrame.from_ndarray(chunk, format=AUDIO_SAMPLE_FORMAT, layout=self.layout)

    def finish(self) -> None:
        """Flush resampler, queue and encoder."""
        if not self.done:
            for samples in self._aligner.push(None):
                self._queue(samples)
        self._drain(final=True)
        self._container.mux(self._stream.encode(None))


def tempo_factors(speed: float) -> list[float]:
    """atempo factors, each within [0.5, 2], whose product is `speed`."""
    factors: list[float] = []
    rest = speed
    while rest > 2.0:
        factors.append(2.0)
        rest /= 2.0
    while rest < 0.5:
        factors.append(0.5)
        rest /= 0.5
    factors.append(rest)
    return factors


class FrameWriter(Protocol):
    """What `TempoSink` writes into: an `AudioWriter`, or anything that takes frames the same way."""

    @property
    def done(self) -> bool:
        """Whether no more audio is wanted."""

    def write(self, frame: AudioFrame, start: Fraction) -> None:
        """Take `frame`, which starts `start` seconds into the output."""

    def finish(self) -> None:
        """No more frames come."""


class TempoSink:
    """Changes audio speed without changing pitch (chained ``atempo``), then writes it."""

    def __init__(self, writer: FrameWriter, speed: float) -> None:
        self._writer = writer
        self._speed = speed
        self._graph: av.filter.Graph | None = None
        self._start: Fraction | None = None

    @property
    def done(self) -> bool:
        """Whether the writer wants no more audio."""
        return self._writer.done

    def _build(self, frame: AudioFrame) -> av.filter.Graph:
        graph = av.filter.Graph()
        graph.threads = 1
        nodes = [
            graph.add_abuffer(
                format=frame.format.name,
                sample_rate=frame.sample_rate,
                layout=frame.layout.name,
                time_base=Fraction(1, frame.sample_rate),
            )
        ]
        nodes += [graph.add("atempo", f"tempo={fmt(f)}") for f in tempo_factors(self._speed)]
        nodes.append(graph.add("abuffersink"))
        graph.link_nodes(*nodes)
        graph.configure()
        return graph

    def write(self, frame: AudioFrame, start: Fraction) -> None:
        """Push `frame` (which starts `start` output seconds in) through the tempo chain."""
        if self._graph is None:
            self._graph = self._build(frame)
            self._start = start
        frame.pts = None
        self._graph.push(frame)
        self._pull()

    def _pull(self) -> None:
        if self._graph is None:
            return
        while True:
            try:
                out = self._graph.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return
            if isinstance(out, AudioFrame):
                self._writer.write(out, self._start or Fraction(0))

    def finish(self) -> None:
        """Drain the tempo chain and finish the writer."""
        if self._graph is not None:
            self._graph.push(None)
            self._pull()
        self._writer.finish()


class AudioTimeline:
    """Sums audio contributions by absolute sample position and writes finished stretches."""

    def __init__(self, writer: AudioWriter) -> None:
        self.writer = writer
        self.channels = 1 if writer.layout == "mono" else 2
        self._base = 0
        self._buffer: F32 = np.zeros((self.channels, 0), dtype=np.float32)

    def add(self, position: int, samples: F32) -> None:
        """Add `samples` starting at absolute sample `position` (not before the flush point)."""
        if position < self._base:
            samples = samples[:, self._base - position :]
            position = self._base
        stop = position - self._base + samples.shape[1]
        if stop > self._buffer.shape[1]:
            grow = np.zeros((self.channels, stop - self._buffer.shape[1]), dtype=np.float32)
            self._buffer = np.concatenate([self._buffer, grow], axis=1)
        self._buffer[:, position - self._base : stop] += samples

    def flush(self, upto: int) -> None:
        """Write everything before sample `upto` (silence where nothing was added)."""
        count = upto - self._base
        if count <= 0:
            return
        if count > self._buffer.shape[1]:
            pad = np.zeros((self.channels, count - self._buffer.shape[1]), dtype=np.float32)
            self._buffer = np.concatenate([self._buffer, pad], axis=1)
        self.writer.write_array(np.clip(self._buffer[:, :count], -1.0, 1.0))
        self._buffer = self._buffer[:, count:].copy()
        self._base = upto


def audio_arrays(reader: MediaReader, rate: int, layout: str) -> Iterator[F32]:
    """`reader`'s first audio stream as float32 arrays from output time 0 (nothing if none)."""
    if reader.audio is None:
        return
    aligner = SampleAligner(rate, layout, reader.stream_end(reader.audio))
    for frame in reader.frames(video=False, audio=True):
        if isinstance(frame, AudioFrame):
            t = reader.time_of(frame)
            yield from aligner.push(frame, t if t is not None else Fraction(0))
        if aligner.done:
            return
    yield from aligner.push(None)


def fixed_blocks(arrays: Iterator[F32], size: int) -> Iterator[F32]:
    """Regroup arrays into blocks of exactly `size` samples (the last may be shorter)."""
    pending: list[F32] = []
    count = 0
    for array in arrays:
        pending.append(array)
        count += array.shape[1]
        while count >= size:
            data = np.concatenate(pending, axis=1)
            yield data[:, :size]
            rest = data[:, size:]
            pending, count = ([rest] if rest.shape[1] else []), rest.shape[1]
    if count:
        yield np.concatenate(pending, axis=1) if len(pending) > 1 else pending[0]


class AudioCopier:
    """Copies an input's AAC packets into the output untouched: no re-encode, no generation loss.

    Used where a step leaves the sound as it is (same timeline, same speed). Packets are
    written as the video advances (`advance`), so the file stays interleaved and memory
    does not grow with the input's length.
    """

    def __init__(self, path: Path, out: OutputContainer) -> None:
        self._source = open_input(path)
        stream = first_audio_stream(self._source)
        if stream is None:  # pragma: no cover - callers check can_copy first
            self._source.close()
            raise InvalidMediaError(f"{path.name}: has no audio stream")
        self._stream_in = stream
        self._stream_out = out.add_stream_from_template(stream)
        self._stream_out.metadata.clear()
        self._out = out
        self._packets = self._source.demux(stream)
        self._pending: av.Packet[Any] | None = None
        self._done = False

    @staticmethod
    def can_copy(reader: MediaReader) -> bool:
        """Whether `reader`'s sound can go into the output as it is.

        AAC can always be copied (it is the source's own generation, or ours); FLAC
        only into an intermediate, never into a delivered file.
        """
        if reader.audio is None:
            return False
        codec = reader.audio.codec_context.name
        return codec == AUDIO_CODEC or (codec == "flac" and active_profile().audio_codec == "flac")

    def advance(self, until: Fraction | None) -> None:
        """Write every packet that starts before `until` seconds (all of them for None)."""
        time_base = self._stream_in.time_base or Fraction(1, 1)
        while not self._done:
            packet = self._pending if self._pending is not None else next(self._packets, None)
            self._pending = None
            if packet is None:
                self._done = True
                break
            if packet.dts is None or packet.pts is None:
                continue  # the demuxer's flush packet
            if until is not None and packet.pts * time_base >= until:
                self._pending = packet
                break
            packet.stream = self._stream_out
            self._out.mux(packet)

    def close(self) -> None:
        self._source.close()
