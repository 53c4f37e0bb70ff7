"""Tiny synthetic inputs for the analyzer's feature tests."""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

SR = 22_050


def write_wav(path: Path, blocks: Iterable[npt.NDArray[np.float64]], rate: int = SR) -> None:
    """Mono 16-bit WAV from float blocks in [-1, 1]."""
    with av.open(str(path), mode="w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=rate)
        stream.codec_context.layout = "mono"
        stream.codec_context.format = "s16"
        written = 0
        for block in blocks:
            pcm = np.clip(np.round(block * 32767), -32768, 32767).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = rate
            frame.pts = written
            frame.time_base = Fraction(1, rate)
            out.mux(stream.encode(frame))
            written += pcm.size
        out.mux(stream.encode(None))


def click(freq: float = 1000.0, gain: float = 0.5) -> npt.NDArray[np.float64]:
    t = np.arange(SR // 100) / SR
    return gain * np.sin(2 * np.pi * freq * t) * np.exp(-t * 400)


def low_thump(freq: float = 60.0) -> npt.NDArray[np.float64]:
    """A kick drum: a low sine falling in pitch, 150 ms."""
    t = np.arange(int(0.15 * SR)) / SR
    return np.sin(2 * np.pi * np.cumsum(freq + 80 * np.exp(-t * 40)) / SR) * np.exp(-t * 20)


def place(duration: float, events: Iterable[tuple[float, npt.NDArray[np.float64]]]) -> npt.NDArray[np.float64]:
    """A signal of `duration` seconds with each sound added at its time."""
    out = np.zeros(round(duration * SR))
    for when, sound in events:
        start = round(when * SR)
        end = min(out.size, start + sound.size)
        out[start:end] += sound[: end - start]
    return out


def write_video(path: Path, frames: Iterable[npt.NDArray[np.uint8]], fps: int = 25) -> None:
    """An H.264 MP4 (no audio) from RGB frames."""
    with av.open(str(path), mode="w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "18"})
        stream.pix_fmt = "yuv420p"
        first = True
        for index, rgb in enumerate(frames):
            if first:
                stream.height, stream.width = rgb.shape[:2]
                first = False
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def solid(colour: tuple[int, int, int], width: int = 64, height: int = 48) -> npt.NDArray[np.uint8]:
    return np.broadcast_to(np.array(colour, dtype=np.uint8), (height, width, 3)).copy()
