"""MUX (video of one input with the audio of another) and AUDIO_MIX (an M4A of mixed audio)."""

from __future__ import annotations

import contextlib
import heapq
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
from av.audio.frame import AudioFrame
from av.packet import Packet
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from artdag_common.errors import InvalidInputError, InvalidMediaError
from artdag_common.operations import AudioMixConfig, MuxConfig
from services.executor.audio import (
    F32,
    AudioWriter,
    audio_arrays,
    fixed_blocks,
    layout_for,
)
from services.executor.encoding import (
    add_audio_stream,
    add_video_stream,
    audio_sample_rate,
    copies_into_output,
    open_output,
)
from services.executor.frames import VideoChain, VideoEncoder, resize_steps, video_track
from services.executor.media import MediaReader, probe
from services.executor.primitives.copy import plan_copy, shift_packet, video_packets
from services.executor.primitives.single import even_size

_MIX_BLOCK = 4096


def _can_copy(reader: MediaReader) -> bool:
    """H.264 yuv420p of the kind this step writes (lossy into a delivered file, lossless into an intermediate)."""
    video = reader.video
    ctx = video.codec_context if video is not None else None
    return ctx is not None and copies_into_output(ctx.name, ctx.pix_fmt, ctx.profile)


def _audio_events(reader: MediaReader) -> Iterator[tuple[Fraction, int, AudioFrame]]:
    for frame in reader.frames(video=False, audio=True):
        if isinstance(frame, AudioFrame):
            t = reader.time_of(frame)
            yield (t if t is not None else Fraction(0)), 1, frame


def render_mux(inputs: list[Path], output_path: Path, config: MuxConfig) -> None:
    """Video of input 0 with the audio of input 1 (re-encoded to AAC).

    H.264 yuv420p video is copied packet for packet; anything else is
    re-encoded. With `shortest` the output ends with the shorter stream (a copy
    is cut at a decode-order packet boundary, the audio then cut to match).
    Raises `InvalidMediaError` when input 1 has no audio.
    """
    if len(inputs) != 2:
        raise InvalidInputError(f"takes exactly 2 inputs, got {len(inputs)}", field="inputs")
    with contextlib.ExitStack() as stack:
        vreader = stack.enter_context(MediaReader(inputs[0]))
        areader = stack.enter_context(MediaReader(inputs[1], need_video=False))
        if areader.audio is None:
            raise InvalidMediaError(f"{areader.name}: has no audio stream")
        audio_end = areader.stream_end(areader.audio) or areader.duration
        end = min(vreader.duration, audio_end) if config.shortest else None
        copy = _can_copy(vreader)
        plan = None
        cut = end
        if copy:
            with MediaReader(inputs[0]) as scan:
                plan = plan_copy(scan, Fraction(0), cut)
            if end is not None:
                end = min(end, plan.end)  # a copy ends at a packet boundary
        audio_ctx = areader.audio.codec_context
        size = even_size(probe(inputs[0])) if not copy else (0, 0)

        out = stack.enter_context(open_output(output_path))
        video = vreader.video
        if video is None:  # pragma: no cover - MediaReader demands video
            return
        if plan is not None:
            vout = out.add_stream_from_template(video)
            vout.metadata.clear()
        else:
            vout = add_video_stream(out, size[0], size[1], vreader.fps)
        aout = add_audio_stream(out, audio_sample_rate(audio_ctx.sample_rate), layout_for(audio_ctx.channels))
        writer = AudioWriter(out, aout, min(end, audio_end) if end is not None else audio_end)
        out.start_encoding()

        events: Iterator[tuple[Fraction, int, Packet[VideoStream] | VideoFrame | AudioFrame]]
        encoder: VideoEncoder | None = None
        if plan is not None:
            time_base = video.time_base or Fraction(1, 90000)
            offset = plan.first_pts

            def packets() -> Iterator[tuple[Fraction, int, Packet[VideoStream]]]:
                for packet in video_packets(vreader, plan, cut):
                    dts = packet.dts if packet.dts is not None else packet.pts or 0
                    yield (dts - offset) * time_base, 0, packet

            events = heapq.merge(packets(), _audio_events(areader), key=lambda e: e[0])
        else:
            encoder = VideoEncoder(out, vout)
            sar = video.sample_aspect_ratio
            chain = VideoChain(lambda f: resize_steps(f, sar, size[0], size[1], mode="stretch"))
            fps = vreader.fps
            frames = ((Fraction(k) / fps, 0, f) for k, f in enumerate(video_track(vreader, chain, fps=fps, end=end)))
            events = heapq.merge(frames, _audio_events(areader), key=lambda e: e[0])

        for t, _, item in events:
            if isinstance(item, Packet) and plan is not None:
                shift_packet(item, plan.first_pts)
                item.stream = vout
                out.mux(item)
            elif isinstance(item, VideoFrame) and encoder is not None:
                encoder.write(item)
            elif isinstance(item, AudioFrame) and not writer.done:
                writer.write(item, t)
        if encoder is not None:
            encoder.finish()
        writer.finish()


def render_audio_mix(inputs: list[Path], output_path: Path, config: AudioMixConfig) -> None:
    """Mix the first audio stream of every input into an audio-only M4A.

    Each input is scaled by its gain (default 1.0); with `normalize` the sum is
    divided by the number of inputs. The output lasts as long as the longest
    input, at the highest input sample rate, in stereo. Raises
    `InvalidInputError` (field "gains") when the gains do not match the inputs
    and `InvalidMediaError` for an input without audio.
    """
    if len(inputs) < 2:
        raise InvalidInputError(f"needs at least 2 inputs, got {len(inputs)}", field="inputs")
    gains = list(config.gains) or [1.0] * len(inputs)
    if len(gains) != len(inputs):
        raise InvalidInputError(f"has {len(gains)} entries for {len(inputs)} inputs", field="gains")
    scale = 1.0 / len(inputs) if config.normalize else 1.0
    with contextlib.ExitStack() as stack:
        readers = [stack.enter_context(MediaReader(path, need_video=False)) for path in inputs]
        for reader in readers:
            if reader.audio is None:
                raise InvalidMediaError(f"{reader.name}: has no audio stream")
        rate = max(audio_sample_rate(r.audio.codec_context.sample_rate) for r in readers if r.audio is not None)
        streams = [fixed_blocks(audio_arrays(r, rate, "stereo"), _MIX_BLOCK) for r in readers]
        weights = [np.float32(g * scale) for g in gains]
        out = stack.enter_context(open_output(output_path, audio_only=True))
        writer = AudioWriter(out, add_audio_stream(out, rate, "stereo"))
        out.start_encoding()
        while True:
            blocks = [next(stream, None) for stream in streams]
            present = [(w, b) for w, b in zip(weights, blocks, strict=True) if b is not None]
            if not present:
                break
            mix: F32 = np.zeros((2, max(b.shape[1] for _, b in present)), dtype=np.float32)
            for weight, block in present:
                mix[:, : block.shape[1]] += block * weight
            writer.write_array(np.clip(mix, -1.0, 1.0))
        writer.finish()
