"""SEQUENCE: clips one after another, normalised, with cuts, crossfades or fades.

Every clip is fitted (and padded) to the target size at the first clip's frame
rate, and lasts a whole number of frames fixed up front from its duration, so
the timeline is known before anything is decoded. Audio is laid on the same
timeline (`AudioTimeline`): a clip without sound contributes silence, and the
audio of each clip is cut or padded to its video length so that nothing drifts.
At most two clips are open at once (during a crossfade).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.audio.frame import AudioFrame
from av.video.frame import VideoFrame

from artdag_common.errors import InvalidInputError, InvalidMediaError
from artdag_common.operations import SequenceConfig
from services.executor.audio import F32, AudioTimeline, AudioWriter, SampleAligner, seconds_to_samples
from services.executor.encoding import (
    MAX_DIMENSION,
    MIN_DIMENSION,
    add_audio_stream,
    add_video_stream,
    audio_sample_rate,
    copies_into_output,
    open_output,
)
from services.executor.frames import (
    VideoChain,
    VideoEncoder,
    even,
    from_yuv_planes,
    resize_steps,
    slot_of,
    video_track,
    yuv_planes,
)
from services.executor.media import MediaReader, parse_colour, probe

_AUDIO_LAYOUT = "stereo"


@dataclass
class _Clip:
    """What the timeline needs to know about one input before rendering."""

    path: Path
    frames: int
    first_frame: int
    has_audio: bool
    first_sample: int = 0
    samples: int = 0
    fade_in: int = 0
    fade_out: int = 0


class _ClipAudio:
    """Lays one clip's audio on the timeline, cut to its length, with its fade ramps."""

    def __init__(self, clip: _Clip, timeline: AudioTimeline, rate: int) -> None:
        self.clip = clip
        self._timeline = timeline
        self._aligner = SampleAligner(rate, _AUDIO_LAYOUT)
        self._aligner.end = clip.samples

    @property
    def done(self) -> bool:
        return self._aligner.done

    @property
    def cursor(self) -> int:
        """Absolute sample up to which this clip has contributed."""
        return self.clip.first_sample + self._aligner.position

    def write(self, frame: AudioFrame, start: Fraction) -> None:
        for samples in self._aligner.push(frame, start):
            self._add(samples)

    def _add(self, samples: F32) -> None:
        local = self._aligner.position - samples.shape[1]
        index = np.arange(local, local + samples.shape[1], dtype=np.float64)
        gain = np.ones_like(index)
        clip = self.clip
        if clip.fade_in:
            gain = np.minimum(gain, (index + 0.5) / clip.fade_in)
        if clip.fade_out:
            gain = np.minimum(gain, (clip.samples - index - 0.5) / clip.fade_out)
        if clip.fade_in or clip.fade_out:
            samples = samples * np.clip(gain, 0.0, 1.0).astype(np.float32)
        self._timeline.add(clip.first_sample + local, samples)

    def finish(self) -> None:
        if not self.done:
            for samples in self._aligner.push(None):
                self._add(samples)
        self._aligner.position = self.clip.samples  # the rest is silence


@dataclass
class _Open:
    clip: _Clip
    reader: MediaReader
    frames: Iterator[VideoFrame]
    audio: _ClipAudio | None
    used: int = 0

    def next(self) -> VideoFrame:
        self.used += 1
        return next(self.frames)


def _target_size(config: SequenceConfig, sizes: list[tuple[int, int]]) -> tuple[int, int]:
    if config.target_size == "explicit" and config.width is not None and config.height is not None:
        return config.width, config.height
    if config.target_size == "largest":
        width, height = max(sizes, key=lambda s: s[0] * s[1])  # the first of equals wins
    elif config.target_size == "last":
        width, height = sizes[-1]
    else:
        width, height = sizes[0]
    return even(width, MIN_DIMENSION, MAX_DIMENSION), even(height, MIN_DIMENSION, MAX_DIMENSION)


def _mix(a: VideoFrame, b: VideoFrame, weight: float) -> VideoFrame:
    pa = yuv_planes(a).astype(np.float32)
    pb = yuv_planes(b).astype(np.float32)
    return from_yuv_planes(np.clip(np.rint(pa + (pb - pa) * np.float32(weight)), 0, 255).astype(np.uint8))


def _fade(frame: VideoFrame, gain: float, height: int) -> VideoFrame:
    planes = yuv_planes(frame).astype(np.float32)
    g = np.float32(gain)
    planes[:height] = 16 + (planes[:height] - 16) * g
    planes[height:] = 128 + (planes[height:] - 128) * g
    return from_yuv_planes(np.clip(np.rint(planes), 0, 255).astype(np.uint8))


@dataclass
class _CopyClip:
    """One input of a copied sequence: its packets' span, found by a scan without decoding."""

    path: Path
    frames: int
    first_pts: int
    ticks: int


def _copyable_video(inputs: list[Path], width: int, height: int, fps: Fraction) -> list[_CopyClip] | None:
    """The inputs' spans if their video can follow one another packet for packet, else None.

    That needs one H.264 stream format throughout (same parameter sets, size, rate and
    time base, each input starting on a keyframe), already the target size, and of the
    kind this step writes (a lossless intermediate is not copied into a delivered file,
    nor lossy video into a lossless one).
    """
    reference: tuple[object, ...] | None = None
    clips: list[_CopyClip] = []
    for path in inputs:
        with MediaReader(path) as reader:
            video = reader.video
            if video is None or video.time_base is None:
                return None
            ctx = video.codec_context
            key = (
                ctx.name,
                ctx.pix_fmt,
                ctx.width,
                ctx.height,
                bytes(ctx.extradata or b""),
                video.time_base,
                reader.fps,
                ctx.profile,
            )
            if reference is None:
                reference = key
            if key != reference or (ctx.width, ctx.height) != (width, height) or reader.fps != fps:
                return None
            if not copies_into_output(ctx.name, ctx.pix_fmt, ctx.profile):
                return None
            frames, first, end, first_key = 0, None, None, None
            for packet in reader.container.demux(video):
                if packet.pts is None or packet.size == 0:
                    continue
                if first_key is None:
                    first_key = packet.is_keyframe
                frames += 1
                first = packet.pts if first is None else min(first, packet.pts)
                stop = packet.pts + (packet.duration or 0)
                end = stop if end is None else max(end, stop)
            if not first_key or first is None or end is None:
                return None
            clips.append(_CopyClip(path, frames, first, end - first))
    return clips


def _copy_sequence(clips: list[_CopyClip], output_path: Path, fps: Fraction, rate: int) -> None:
    """Cut-only concatenation: the video packets are copied, the sound laid on the timeline and encoded once."""
    with open_output(output_path) as out, contextlib.ExitStack() as stack:
        template = stack.enter_context(MediaReader(clips[0].path))
        if template.video is None or template.video.time_base is None:  # pragma: no cover - checked by the scan
            raise InvalidMediaError(f"{template.name}: has no video stream")
        time_base = template.video.time_base
        vout = out.add_stream_from_template(template.video)
        vout.metadata.clear()
        template.close()
        timeline = AudioTimeline(AudioWriter(out, add_audio_stream(out, rate, _AUDIO_LAYOUT))) if rate else None
        out.start_encoding()
        offset = 0  # ticks of the output's video so far
        for clip in clips:
            start_s = offset * time_base
            with MediaReader(clip.path) as reader:
                audio = None
                if timeline is not None and reader.audio is not None:
                    first_sample = seconds_to_samples(start_s, rate)
                    samples = seconds_to_samples((offset + clip.ticks) * time_base, rate) - first_sample
                    audio = _ClipAudio(
                        _Clip(clip.path, clip.frames, 0, True, first_sample=first_sample, samples=samples),
                        timeline,
                        rate,
                    )
                shift = offset - clip.first_pts
                for item in reader.container.demux(*[s for s in (reader.video, reader.audio) if s is not None]):
                    if item.pts is None or item.size == 0:
                        continue
                    if item.stream is reader.video:
                        item.pts += shift
                        if item.dts is not None:
                            item.dts += shift
                        item.stream = vout
                        out.mux(item)
                    elif audio is not None and timeline is not None and not audio.done:
                        try:
                            decoded_frames = item.decode()
                        except av.FFmpegError as exc:
                            raise InvalidMediaError(f"{reader.name}: cannot decode its sound ({exc})") from exc
                        for frame in decoded_frames:
                            if isinstance(frame, AudioFrame):
                                t = reader.time_of(frame)
                                audio.write(frame, t if t is not None else Fraction(0))
                        timeline.flush(audio.cursor)
                if audio is not None:
                    audio.finish()
            offset += clip.ticks
            if timeline is not None:
                timeline.flush(seconds_to_samples(offset * time_base, rate))
        if timeline is not None:
            timeline.writer.finish()


def render_sequence(inputs: list[Path], output_path: Path, config: SequenceConfig) -> None:
    """Concatenate `inputs` into `output_path` as `config` says (see the module docstring).

    Cuts between inputs of one stream format (the parts the planner made for this
    step) copy the video packets instead of decoding and encoding them again; only
    the sound is encoded. Crossfades overlap neighbours by the transition (output length Σd − (n−1)·t);
    fades dim each boundary out to black and back in. A clip shorter than the
    transitions it takes part in raises `InvalidInputError` (transition.duration).
    """
    if not inputs:
        raise InvalidInputError("needs at least one input", field="inputs")
    colour = parse_colour(config.background)
    infos = [probe(path) for path in inputs]
    width, height = _target_size(config, [(i.width, i.height) for i in infos])
    with MediaReader(inputs[0]) as first:
        fps = first.fps
    kind = config.transition.type
    overlap = slot_of(Fraction(config.transition.duration), fps) if kind != "cut" else 0
    overlap = max(overlap, 1) if kind != "cut" else 0

    clips: list[_Clip] = []
    position = 0
    for index, path in enumerate(inputs):
        with MediaReader(path) as reader:
            frames = max(1, slot_of(reader.duration, fps))
            has_audio = reader.audio is not None
        needs = overlap * ((index > 0) + (index < len(inputs) - 1))
        if frames < needs:
            raise InvalidInputError(
                f"input {index} lasts {float(frames / fps):.3f} s, shorter than the {float(needs / fps):.3f} s "
                f"of {kind} transitions it takes part in",
                field="transition.duration",
            )
        clips.append(_Clip(path, frames, position, has_audio))
        position += frames - (overlap if kind == "crossfade" else 0)
    total_frames = position + (overlap if kind == "crossfade" else 0)

    rates = [audio_sample_rate(i.sample_rate) for i in infos if i.sample_rate is not None]
    rate = max(rates) if rates else 0
    if kind == "cut":
        copyable = _copyable_video(inputs, width, height, fps)
        if copyable is not None:
            _copy_sequence(copyable, output_path, fps, rate)
            return
    if rate:
        for index, clip in enumerate(clips):
            clip.first_sample = seconds_to_samples(clip.first_frame / fps, rate)
            clip.samples = seconds_to_samples((clip.first_frame + clip.frames) / fps, rate) - clip.first_sample
            ramp = seconds_to_samples((clip.first_frame + overlap) / fps, rate) - clip.first_sample
            clip.fade_in = ramp if index > 0 and kind != "cut" else 0
            clip.fade_out = ramp if index < len(clips) - 1 and kind != "cut" else 0

    with open_output(output_path) as out, contextlib.ExitStack() as stack:
        encoder = VideoEncoder(out, add_video_stream(out, width, height, fps))
        timeline = AudioTimeline(AudioWriter(out, add_audio_stream(out, rate, _AUDIO_LAYOUT))) if rate else None
        out.start_encoding()

        def open_clip(clip: _Clip) -> _Open:
            reader = stack.enter_context(MediaReader(clip.path))
            audio = _ClipAudio(clip, timeline, rate) if timeline is not None and clip.has_audio else None
            sar = reader.video.sample_aspect_ratio if reader.video is not None else None
            chain = VideoChain(lambda f: resize_steps(f, sar, width, height, mode="fit", colour=colour))
            return _Open(clip, reader, video_track(reader, chain, fps=fps, length=clip.frames, audio=audio), audio)

        live: list[_Open] = []
        opened = 0

        def emit(frame: VideoFrame) -> None:
            encoder.write(frame)
            if timeline is not None:
                waiting = [o.audio.cursor for o in live if o.audio is not None]
                if opened < len(clips):
                    waiting.append(clips[opened].first_sample)
                timeline.flush(min(waiting) if waiting else seconds_to_samples(total_frames / fps, rate))

        def close(item: _Open) -> None:
            if item.audio is not None:
                item.audio.finish()
            item.reader.close()
            live.remove(item)

        current = open_clip(clips[0])
        live.append(current)
        opened = 1
        for index, clip in enumerate(clips):
            last = index == len(clips) - 1
            tail = 0 if last else overlap
            while current.used < clip.frames - tail:
                frame = current.next()
                if kind == "fade" and index > 0 and current.used <= overlap:
                    frame = _fade(frame, current.used / (overlap + 1), height)
                emit(frame)
            if last:
                close(current)
                break
            if kind == "crossfade":
                incoming = open_clip(clips[index + 1])
                live.append(incoming)
                opened += 1
                for step in range(overlap):
                    emit(_mix(current.next(), incoming.next(), (step + 1) / (overlap + 1)))
                close(current)
                current = incoming
                continue
            for step in range(tail):
                emit(_fade(current.next(), 1 - (step + 1) / (overlap + 1), height))
            close(current)
            current = open_clip(clips[index + 1])
            live.append(current)
            opened += 1
        if encoder.frames_written != total_frames:  # pragma: no cover - the tracks have fixed lengths
            raise InvalidMediaError(f"sequence wrote {encoder.frames_written} of {total_frames} frames")
        encoder.finish()
        if timeline is not None:
            timeline.flush(seconds_to_samples(Fraction(total_frames) / fps, rate))
            timeline.writer.finish()
