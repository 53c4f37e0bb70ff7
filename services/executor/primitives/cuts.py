"""CUTS: pieces of one input cut together in one pass: one decoder, one encoder.

A cut-only SEQUENCE of slices of one source (the slices of a beat-synced clip, a montage
of segments) costs, rendered slice by slice, one encoder start and one seek back to a
keyframe per slice: more than the frames themselves when slices last a beat. The planner
groups such slices into a few CUTS steps. Each piece is a chain (`chain.build_pipeline`)
whose window is read from a decoder that only moves forward while the pieces do (it seeks
when a piece starts before the frame it holds, or far ahead of it), and every piece's
frames go to the same encoder, so the group's output is what the SEQUENCE of its pieces
would be, encoded once. Each piece's sound is cut (and time-stretched) to exactly the
samples its pictures last, so nothing drifts however many pieces there are.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
from av.audio.frame import AudioFrame
from av.video.frame import VideoFrame

from artdag_common.errors import InvalidInputError, InvalidMediaError, PermanentError
from artdag_common.ids import sha3_hex
from artdag_common.operations import CutsConfig
from services.executor.audio import F32, AudioWriter, SampleAligner, TempoSink, add_audio_like, seconds_to_samples
from services.executor.encoding import add_video_stream, open_output
from services.executor.frames import Step, VideoChain, VideoEncoder, slot_of
from services.executor.media import MediaReader, probe
from services.executor.primitives.chain import Pipeline, build_pipeline
from services.executor.primitives.single import even_size

_SEEK_AHEAD_S = Fraction(10)
"""Decoding forward is cheaper than seeking back to a keyframe for gaps shorter than this."""


class _FrameSource:
    """Decoded video frames in file order, handed out by time; seeks only when it must."""

    def __init__(self, reader: MediaReader) -> None:
        self.reader = reader
        self._frames: Iterator[VideoFrame] | None = None
        self._current: tuple[Fraction, VideoFrame] | None = None
        self._upcoming: tuple[Fraction, VideoFrame] | None = None

    def _next(self) -> tuple[Fraction, VideoFrame] | None:
        assert self._frames is not None
        for frame in self._frames:
            t = self.reader.time_of(frame)
            if t is None:
                last = self._upcoming or self._current
                t = last[0] + 1 / self.reader.fps if last is not None else Fraction(0)
            return t, frame
        return None

    def _restart(self, at: Fraction) -> None:
        self.reader.seek(at, rewind=True)
        frames = self.reader.frames(video=True, audio=False)
        self._frames = (frame for frame in frames if isinstance(frame, VideoFrame))
        self._current = None
        self._upcoming = self._next()

    def before(self, threshold: Fraction) -> VideoFrame:
        """The last frame that starts before `threshold` seconds (the first one if none does)."""
        if self._frames is None:
            self._restart(threshold)
        elif self._current is not None and self._current[0] >= threshold:
            self._restart(threshold)  # a piece that starts before the frame we hold
        elif self._upcoming is not None and self._upcoming[0] + _SEEK_AHEAD_S < threshold:
            self._restart(threshold)
        while self._upcoming is not None and self._upcoming[0] < threshold:
            self._current = self._upcoming
            self._upcoming = self._next()
        chosen = self._current or self._upcoming
        if chosen is None:
            raise InvalidMediaError(f"{self.reader.name}: video stream has no decodable frames")
        return chosen[1]


class _PieceSound:
    """One piece's sound laid end to end after the last: exactly `samples` long, padded with silence."""

    def __init__(self, writer: AudioWriter, samples: int) -> None:
        self._writer = writer
        self._aligner = SampleAligner(writer.rate, writer.layout)
        self._aligner.end = samples
        self._samples = samples
        self._written = 0

    @property
    def done(self) -> bool:
        return self._aligner.done

    def write(self, frame: AudioFrame, start: Fraction) -> None:
        if not self.done:
            self._take(self._aligner.push(frame, start))

    def _take(self, arrays: list[F32]) -> None:
        for samples in arrays:
            self._written += samples.shape[1]
            self._writer.write_array(samples)

    def finish(self) -> None:
        if not self.done:
            self._take(self._aligner.push(None))
        missing = self._samples - self._written
        if missing > 0:
            self._take([np.zeros((1 if self._writer.layout == "mono" else 2, missing), dtype=np.float32)])


def _first_steps(pipeline: Pipeline, sar: Fraction | None, frame: VideoFrame) -> list[Step]:
    return pipeline.first_plan(frame, sar)


def _piece_seed(seed: int, index: int) -> int:
    return int(sha3_hex(["cuts-piece", seed, index])[:16], 16)


def _piece_sound(sound: MediaReader, writer: AudioWriter, pipeline: Pipeline, end: Fraction, samples: int) -> None:
    """Write the sound under one piece: its window of the source at its speed, `samples` long."""
    window = pipeline.window
    collector = _PieceSound(writer, samples)
    sink: _PieceSound | TempoSink = collector if window.speed == 1 else TempoSink(collector, float(window.speed))
    sound.seek(window.start, rewind=True)
    for frame in sound.frames(video=False, audio=True):
        if not isinstance(frame, AudioFrame):
            continue
        t = sound.time_of(frame)
        if t is None:
            continue
        if t + Fraction(frame.samples, frame.sample_rate or 1) <= window.start:
            continue
        if t >= end or sink.done:
            break
        sink.write(frame, (t - window.start) / window.speed)
    sink.finish()


def render_cuts(input_path: Path, output_path: Path, config: CutsConfig, *, seed: int) -> None:
    """Render every piece of `config` over `input_path`, one after another, in one pass.

    Raises `InvalidInputError` (field "start") for a piece that holds no frames, and
    `PermanentError` when the pieces do not all come out the same size.
    """
    size = even_size(probe(input_path))
    with MediaReader(input_path) as reader:
        fps, duration = reader.fps, reader.duration
    pipelines = [
        build_pipeline(piece.stages, size, fps, duration, seed=_piece_seed(seed, k))
        for k, piece in enumerate(config.pieces)
    ]
    width, height = pipelines[0].width, pipelines[0].height
    if any((p.width, p.height) != (width, height) for p in pipelines):
        raise PermanentError("the pieces of a CUTS step must all come out the same size")
    with MediaReader(input_path) as reader, open_output(output_path) as out:
        video = reader.video
        sar = video.sample_aspect_ratio if video is not None else None
        encoder = VideoEncoder(out, add_video_stream(out, width, height, fps))
        audio_stream = add_audio_like(out, reader) if config.audio else None
        writer = AudioWriter(out, audio_stream) if audio_stream is not None else None
        out.start_encoding()
        source = _FrameSource(reader)
        sound = MediaReader(input_path) if writer is not None else None
        try:
            elapsed = 0  # output frames so far
            # Cut points fall on the frame nearest their exact time on the whole cut's timeline:
            # a piece lasts as many frames as that gives it, so rounding never adds up to drift.
            timeline = Fraction(config.start_s)
            for index, pipeline in enumerate(pipelines):
                window = pipeline.window
                end = min(window.end, duration) if window.end is not None else duration
                if end <= window.start:
                    raise InvalidInputError(
                        f"piece {index} holds no video (from {float(window.start):g} s)", field="start"
                    )
                first = slot_of(timeline, fps)
                timeline += (end - window.start) / window.speed
                slots = slot_of(timeline, fps) - first
                if slots <= 0:
                    continue  # shorter than a frame here: its time goes to the next piece
                chain = VideoChain(functools.partial(_first_steps, pipeline, sar))
                converted: tuple[VideoFrame, VideoFrame] | None = None
                for slot in range(slots):
                    frame = source.before(window.start + (slot + Fraction(1, 2)) * window.speed / fps)
                    if converted is None or converted[0] is not frame:
                        converted = (frame, chain(frame))  # a held frame is converted once
                    encoder.write(pipeline.hook(converted[1], slot))
                if writer is not None and sound is not None:
                    first = seconds_to_samples(Fraction(elapsed) / fps, writer.rate)
                    last = seconds_to_samples(Fraction(elapsed + slots) / fps, writer.rate)
                    _piece_sound(sound, writer, pipeline, end, last - first)
                elapsed += slots
            encoder.finish()
            if writer is not None:
                writer.finish()
        finally:
            if sound is not None:
                sound.close()
