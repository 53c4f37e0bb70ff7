"""Deterministic synthetic media for tests, demos and benchmarks.

`write_test_clip` writes an H.264/AAC MP4 whose frames have known content (colour
bars plus a white box whose position is a function of the frame index) and whose
audio is a pure sine tone; `write_click_track` writes a WAV with clicks on the
beats. Both produce the same bytes every time for the same arguments.

This module must not import from ``services/``: its encoder settings are its
own, chosen for speed rather than quality.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import av.codec.context
import numpy as np
import numpy.typing as npt

from artdag_common.errors import InvalidInputError

__all__ = ["BAR_COLOURS_RGB", "box_position", "write_click_track", "write_test_clip"]

BAR_COLOURS_RGB: tuple[tuple[int, int, int], ...] = (
    (192, 192, 192),
    (192, 192, 0),
    (0, 192, 192),
    (0, 192, 0),
    (192, 0, 192),
    (192, 0, 0),
    (0, 0, 192),
)
"""The seven 75% SMPTE-style colour bars, left to right."""

_AUDIO_RATE = 44_100
_AUDIO_CHUNK = 1024  # the AAC encoder's frame size
_BITEXACT = int(av.codec.context.Flags.bitexact)
_CONTAINER_OPTIONS = {"fflags": "+bitexact"}

U8Array = npt.NDArray[np.uint8]


def _rgb_to_yuv(r: float, g: float, b: float) -> tuple[int, int, int]:
    """BT.601 limited-range YUV for an 8-bit RGB colour."""
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return round(y), round(u), round(v)


def box_position(index: int, *, width: int, height: int, n_frames: int) -> tuple[int, int, int]:
    """Top-left corner (x, y) and side of the moving box in frame `index`.

    The box sweeps left to right across the middle of the picture over the clip.
    Coordinates and side are even so the box is exact in yuv420p.
    """
    side = max(2, (min(width, height) // 4) & ~1)
    span = max(0, width - side)
    x = (span * index // max(1, n_frames - 1)) & ~1
    y = ((height - side) // 2) & ~1
    return x, y, side


def _bars_planes(width: int, height: int) -> tuple[U8Array, U8Array, U8Array]:
    """The Y, U, V planes of the colour-bar background."""
    cw, ch = width // 2, height // 2
    y = np.empty((height, width), dtype=np.uint8)
    u = np.empty((ch, cw), dtype=np.uint8)
    v = np.empty((ch, cw), dtype=np.uint8)
    n = len(BAR_COLOURS_RGB)
    for i, rgb in enumerate(BAR_COLOURS_RGB):
        yy, uu, vv = _rgb_to_yuv(*rgb)
        x0, x1 = (
            (width * i // n) & ~1,
            (width * (i + 1) // n) & ~1 if i < n - 1 else width,
        )
        y[:, x0:x1] = yy
        u[:, x0 // 2 : x1 // 2] = uu
        v[:, x0 // 2 : x1 // 2] = vv
    return y, u, v


def _validate_positive(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise InvalidInputError(f"must be a positive number, got {value!r}", field=name)


def write_test_clip(
    path: Path,
    *,
    width: int = 640,
    height: int = 360,
    fps: int = 25,
    duration_s: float = 2.0,
    tone_hz: float = 440.0,
    with_audio: bool = True,
) -> None:
    """Write a deterministic H.264/AAC MP4 test clip to `path`.

    Video: `width`x`height` yuv420p at constant `fps` for ``round(duration_s * fps)``
    frames of colour bars with a white box moving left to right (see
    `box_position`). Audio (if `with_audio`): a stereo sine at `tone_hz`, 44.1 kHz,
    amplitude 0.5, exactly `duration_s` long. Width and height must be even.
    """
    for name, value in (("width", width), ("height", height)):
        if not isinstance(value, int) or value < 2 or value % 2:
            raise InvalidInputError(f"must be an even integer >= 2, got {value!r}", field=name)
    if not isinstance(fps, int) or fps <= 0:
        raise InvalidInputError(f"must be a positive integer, got {fps!r}", field="fps")
    _validate_positive("duration_s", duration_s)
    _validate_positive("tone_hz", tone_hz)

    n_frames = max(1, round(duration_s * fps))
    n_samples = round(duration_s * _AUDIO_RATE)
    bars_y, bars_u, bars_v = _bars_planes(width, height)
    buffer = np.empty((height * 3 // 2, width), dtype=np.uint8)
    y_plane = buffer[:height]
    uv = buffer[height:].reshape(2, height // 2, width // 2)  # I420 layout: U then V

    with av.open(str(path), mode="w", format="mp4", container_options=_CONTAINER_OPTIONS) as out:
        video = out.add_stream(
            "libx264",
            rate=fps,
            options={
                "preset": "ultrafast",
                "crf": "23",
                "threads": "1",
                "x264-params": "threads=1",
            },
        )
        video.width = width
        video.height = height
        video.pix_fmt = "yuv420p"
        video.codec_context.thread_count = 1
        video.codec_context.flags = video.codec_context.flags | _BITEXACT
        audio = None
        if with_audio:
            audio = out.add_stream("aac", rate=_AUDIO_RATE, options={"threads": "1", "aac_coder": "fast"})
            audio.codec_context.layout = "stereo"
            audio.codec_context.format = "fltp"
            audio.codec_context.bit_rate = 128_000
            audio.codec_context.flags = audio.codec_context.flags | _BITEXACT

        step = 2 * math.pi * tone_hz / _AUDIO_RATE
        audio_done = 0
        for index in range(n_frames):
            y_plane[:] = bars_y
            uv[0] = bars_u
            uv[1] = bars_v
            x, y, side = box_position(index, width=width, height=height, n_frames=n_frames)
            y_plane[y : y + side, x : x + side] = 235
            uv[:, y // 2 : (y + side) // 2, x // 2 : (x + side) // 2] = 128
            frame = av.VideoFrame.from_ndarray(buffer, format="yuv420p")
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            out.mux(video.encode(frame))
            if audio is None:
                continue
            # Keep audio level with video so the muxer never has to buffer much.
            audio_until = n_samples if index == n_frames - 1 else (index + 1) * _AUDIO_RATE // fps
            while audio_done + _AUDIO_CHUNK <= audio_until or (audio_done < audio_until == n_samples):
                count = min(_AUDIO_CHUNK, n_samples - audio_done)
                t = np.arange(audio_done, audio_done + count, dtype=np.float64)
                mono = (0.5 * np.sin(step * t)).astype(np.float32)
                aframe = av.AudioFrame.from_ndarray(np.stack([mono, mono]), format="fltp", layout="stereo")
                aframe.sample_rate = _AUDIO_RATE
                aframe.pts = audio_done
                aframe.time_base = Fraction(1, _AUDIO_RATE)
                out.mux(audio.encode(aframe))
                audio_done += count
        out.mux(video.encode(None))
        if audio is not None:
            out.mux(audio.encode(None))


def write_click_track(
    path: Path,
    *,
    bpm: float,
    duration_s: float,
    sample_rate: int = 44_100,
) -> None:
    """Write a mono 16-bit PCM WAV of `duration_s` with a short click on every beat.

    Beats fall at ``k * 60 / bpm`` seconds from 0; each click is a 10 ms, 1 kHz
    burst with an exponential decay. The file has exactly
    ``round(duration_s * sample_rate)`` samples.
    """
    _validate_positive("bpm", bpm)
    _validate_positive("duration_s", duration_s)
    if not isinstance(sample_rate, int) or not 1000 <= sample_rate <= 384_000:
        raise InvalidInputError(
            f"must be an integer between 1000 and 384000, got {sample_rate!r}",
            field="sample_rate",
        )

    n_samples = max(1, round(duration_s * sample_rate))
    samples = np.zeros(n_samples, dtype=np.float64)
    click_len = max(1, sample_rate // 100)
    t = np.arange(click_len, dtype=np.float64) / sample_rate
    click = 0.8 * np.sin(2 * math.pi * 1000.0 * t) * np.exp(-t * 400.0)
    beat_s = 60.0 / bpm
    beat = 0
    while (start := round(beat * beat_s * sample_rate)) < n_samples:
        end = min(n_samples, start + click_len)
        samples[start:end] += click[: end - start]
        beat += 1
    pcm = np.clip(np.round(samples * 32767), -32768, 32767).astype(np.int16)

    with av.open(str(path), mode="w", format="wav", container_options=_CONTAINER_OPTIONS) as out:
        stream = out.add_stream("pcm_s16le", rate=sample_rate)
        stream.codec_context.layout = "mono"
        stream.codec_context.format = "s16"
        stream.codec_context.flags = stream.codec_context.flags | _BITEXACT
        chunk = 4096
        for start in range(0, n_samples, chunk):
            part = pcm[start : start + chunk]
            frame = av.AudioFrame.from_ndarray(part.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = sample_rate
            frame.pts = start
            frame.time_base = Fraction(1, sample_rate)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
