"""The shared loop of every one-input, one-output video renderer."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

from av.video.frame import VideoFrame

from artdag_common.errors import InvalidInputError
from services.executor.audio import AudioCopier, AudioWriter, TempoSink, add_audio_like
from services.executor.encoding import MAX_DIMENSION, MIN_DIMENSION, add_video_stream, open_output
from services.executor.frames import Step, VideoChain, VideoEncoder, even, video_track
from services.executor.media import MediaInfo, MediaReader

FramePlan = Callable[[VideoFrame, Fraction | None], list[Step]]
"""Filter steps for a decoded frame, given the stream's sample aspect ratio."""

FrameHook = Callable[[VideoFrame, int], VideoFrame]
"""A per-frame stage after the chain: (converted frame, output index) → output frame."""


def even_size(info: MediaInfo) -> tuple[int, int]:
    """The input's displayed size rounded to even numbers within the encoder's limits."""
    return (
        even(info.width, MIN_DIMENSION, MAX_DIMENSION),
        even(info.height, MIN_DIMENSION, MAX_DIMENSION),
    )


def render_single(
    input_path: Path,
    output_path: Path,
    *,
    width: int,
    height: int,
    plan: FramePlan,
    start: Fraction = Fraction(0),
    end: Fraction | None = None,
    speed: float = 1.0,
    hook: FrameHook | None = None,
    audio: bool = True,
) -> None:
    """Render [`start`, `end`) of `input_path` at `speed` through `plan` (and `hook`).

    The output is `width`x`height` at the input's frame rate in the shared
    profile; the first audio stream, if any, is cut and retimed to match
    (unless `audio` is False: a video-only chunk).
    Raises `InvalidInputError` (field "start") when the range holds no frames.
    """
    with MediaReader(input_path) as reader:
        video = reader.video
        sar = video.sample_aspect_ratio if video is not None else None
        with open_output(output_path) as out:
            vout = add_video_stream(out, width, height, reader.fps)
            # Sound the step leaves alone is copied as it is, not decoded and encoded again.
            copy_audio = audio and speed == 1 and start == 0 and end is None and AudioCopier.can_copy(reader)
            aout = add_audio_like(out, reader) if audio and not copy_audio else None
            copier = AudioCopier(input_path, out) if copy_audio else None
            out.start_encoding()
            writer = sink = None
            if aout is not None:
                audio_end = reader.stream_end(reader.audio)
                if end is not None:
                    audio_end = end if audio_end is None else min(end, audio_end)
                writer = AudioWriter(out, aout, None if audio_end is None else (audio_end - start) / Fraction(speed))
                sink = writer if speed == 1 else TempoSink(writer, speed)
            chain = VideoChain(lambda frame: plan(frame, sar))
            encoder = VideoEncoder(out, vout)
            frames = video_track(reader, chain, fps=reader.fps, start=start, end=end, speed=Fraction(speed), audio=sink)
            for index, frame in enumerate(frames):
                encoder.write(hook(frame, index) if hook is not None else frame)
                if copier is not None:
                    copier.advance(Fraction(index + 1) / reader.fps)
            if encoder.frames_written == 0:
                raise InvalidInputError(f"no video between {float(start):g} s and the end of the input", field="start")
            encoder.finish()
            if sink is not None:
                sink.finish()
            if copier is not None:
                copier.advance(None)
                copier.close()
