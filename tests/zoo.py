"""Odd and hostile media for the media-zoo tests, made on the spot (never committed).

Each maker writes one small file into a directory and returns its path. Frames are made with
numpy and encoded with PyAV; the decode bombs are real H.264 streams whose sequence parameter
set is rewritten to declare enormous pictures (a few hundred bytes that ask a decoder for
384 MB a frame), so the tests never encode or decode anything large themselves.
"""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from artdag_cli.demo_media import write_click_track, write_test_clip

RATE = 25


def _frames(width: int, height: int, count: int) -> Iterator[np.ndarray]:
    """Moving colour ramps, `count` RGB frames."""
    ys, xs = np.mgrid[0:height, 0:width]
    for i in range(count):
        rgb = np.stack([(xs * 7 + i * 9) % 256, (ys * 5 + i * 3) % 256, ((xs + ys) * 3 + i * 5) % 256], axis=-1)
        yield rgb.astype(np.uint8)


def _encode(
    path: Path,
    *,
    fmt: str,
    codec: str,
    size: tuple[int, int] = (64, 48),
    pix_fmt: str = "yuv420p",
    count: int = 12,
    options: dict[str, str] | None = None,
    times: list[int] | None = None,
    audio_layout: str | None = None,
    container_options: dict[str, str] | None = None,
) -> Path:
    """Encode `count` frames (at `times`, in 1/RATE s, if given) and, with `audio_layout`, a tone."""
    width, height = size
    with av.open(str(path), "w", format=fmt, container_options=container_options or {}) as out:
        video = out.add_stream(codec, rate=RATE, options={"threads": "1", **(options or {})})
        assert isinstance(video, av.VideoStream)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        video.codec_context.time_base = Fraction(1, RATE)
        sound = out.add_stream("aac", rate=48_000, layout=audio_layout) if audio_layout else None
        for i, rgb in enumerate(_frames(width, height, count)):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt)
            frame.pts = times[i] if times is not None else i
            frame.time_base = Fraction(1, RATE)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None and audio_layout:
            channels = len(sound.codec_context.layout.channels)
            samples = 48_000 * count // RATE
            tone = (0.3 * np.sin(np.arange(samples) * 2 * np.pi * 440 / 48_000)).astype(np.float32)
            for start in range(0, samples, 1024):
                part = np.ascontiguousarray(np.tile(tone[start : start + 1024], (channels, 1)))
                aframe = av.AudioFrame.from_ndarray(part, format="fltp", layout=audio_layout)
                aframe.sample_rate, aframe.pts = 48_000, start
                out.mux(sound.encode(aframe))
            out.mux(sound.encode(None))
    return path


def _still(path: Path, codec: str, pix_fmt: str) -> Path:
    rgb = next(_frames(96, 64, 1))
    with av.open(str(path), "w", format="image2", options={"update": "1"}) as out:
        stream = out.add_stream(codec)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = 96, 64, pix_fmt
        out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt)))
        out.mux(stream.encode(None))
    return path


# -- H.264 whose header asks for huge pictures ---------------------------------------------------


class _BitReader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def u(self, bits: int) -> int:
        value = 0
        for _ in range(bits):
            value = (value << 1) | (self.data[self.pos >> 3] >> (7 - (self.pos & 7))) & 1
            self.pos += 1
        return value

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
        return (1 << zeros) - 1 + self.u(zeros)


class _BitWriter:
    def __init__(self) -> None:
        self.bits: list[int] = []

    def u(self, bits: int, value: int) -> None:
        self.bits.extend((value >> i) & 1 for i in range(bits - 1, -1, -1))

    def ue(self, value: int) -> None:
        value += 1
        self.u(value.bit_length() - 1, 0)
        self.u(value.bit_length(), value)

    def rbsp(self) -> bytes:
        bits = [*self.bits, 1]
        bits += [0] * (-len(bits) % 8)
        return bytes(int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits), 8))


def _unescape(data: bytes) -> bytes:
    return re.sub(b"\x00\x00\x03", b"\x00\x00", data)


def _escape(data: bytes) -> bytes:
    out, zeros = bytearray(), 0
    for byte in data:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


_HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}


def _resized_sps(nal: bytes, width: int, height: int) -> bytes:
    """An H.264 sequence parameter set (as x264 writes it) declaring `width`x`height` pictures."""
    r, w = _BitReader(_unescape(nal[1:])), _BitWriter()
    profile = r.u(8)
    w.u(8, profile)
    w.u(16, r.u(16))  # constraint flags, level
    w.ue(r.ue())  # sps id
    if profile in _HIGH_PROFILES:
        chroma = r.ue()
        w.ue(chroma)
        if chroma == 3:
            w.u(1, r.u(1))
        w.ue(r.ue())
        w.ue(r.ue())  # bit depths
        w.u(1, r.u(1))
        assert r.u(1) == 0, "x264 writes no scaling matrix"
        w.u(1, 0)
    w.ue(r.ue())  # log2_max_frame_num_minus4
    poc_type = r.ue()
    w.ue(poc_type)
    assert poc_type in (0, 2)
    if poc_type == 0:
        w.ue(r.ue())
    w.ue(r.ue())  # reference frames
    w.u(1, r.u(1))
    r.ue()
    r.ue()
    w.ue(width // 16 - 1)
    w.ue(height // 16 - 1)
    frame_mbs_only = r.u(1)
    w.u(1, frame_mbs_only)
    if not frame_mbs_only:
        w.u(1, r.u(1))
    w.u(1, r.u(1))  # direct_8x8_inference
    w.u(1, 0)  # no cropping
    w.u(1, 0)  # no VUI
    return nal[:1] + _escape(w.rbsp())


def _annex_b(count: int, size: int = 64) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="h264") as out:
        stream = out.add_stream("libx264", rate=RATE, options={"preset": "ultrafast", "x264-params": "threads=1"})
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i, rgb in enumerate(_frames(size, size, count)):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buffer.getvalue()


def _nals(stream: bytes) -> list[bytes]:
    starts = [m.end() for m in re.finditer(b"\x00\x00\x01", stream)]
    ends = [*(m.start() for m in re.finditer(b"\x00\x00\x01", stream)), len(stream)][1:]
    return [stream[a:b].rstrip(b"\x00") for a, b in zip(starts, ends, strict=True)]


def bomb_h264(width: int, height: int, count: int = 3) -> bytes:
    """A raw H.264 stream of `count` small pictures whose header declares `width`x`height`."""
    nals = _nals(_annex_b(count))
    return b"".join(
        b"\x00\x00\x00\x01" + (_resized_sps(nal, width, height) if nal[0] & 0x1F == 7 else nal) for nal in nals
    )


def _remux_mp4(raw: bytes, path: Path, *, declare: tuple[int, int] | None = None) -> Path:
    """Raw H.264 into MP4 (never decoded here); `declare` writes that size in the MP4's own header."""
    source = path.with_suffix(".h264")
    source.write_bytes(raw)
    try:
        with (
            av.open(str(source), options={"max_pixels": "4096"}) as src,
            av.open(str(path), "w", format="mp4") as out,
        ):
            stream = src.streams.video[0]
            copy = out.add_stream_from_template(stream)
            if declare is not None:
                copy.codec_context.width, copy.codec_context.height = declare
            copy.time_base = stream.time_base
            for packet in src.demux(stream):
                if packet.size:
                    packet.stream = copy
                    out.mux(packet)
    finally:
        source.unlink()
    return path


def decode_bomb(path: Path) -> Path:
    """An MP4 of a few hundred bytes whose H.264 declares 16000x16000 pictures (384 MB each)."""
    return _remux_mp4(bomb_h264(16000, 16000), path)


def late_bomb(path: Path) -> Path:
    """An MP4 that says 64x64 in every header, whose stream switches to 16000x16000 pictures after 30 frames."""
    return _remux_mp4(_annex_b(30) + bomb_h264(16000, 16000), path, declare=(64, 64))


# -- the zoo ----------------------------------------------------------------------------------------


def _bytes(data: bytes) -> Callable[[Path], Path]:
    def make(path: Path) -> Path:
        path.write_bytes(data)
        return path

    return make


def _one_frame(path: Path) -> Path:
    write_test_clip(path, width=64, height=48, fps=RATE, duration_s=1 / RATE)
    return path


def _tone(path: Path) -> Path:
    write_click_track(path, bpm=120, duration_s=1.0)
    return path


def _truncated(path: Path) -> Path:
    whole = _encode(path, fmt="mp4", codec="libx264", container_options={"movflags": "+faststart"})
    data = whole.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])  # the index is whole, the frames it points at are not
    return path


def _no_moov(path: Path) -> Path:
    data = _encode(path, fmt="mp4", codec="libx264").read_bytes()
    path.write_bytes(data[: data.index(b"moov") - 4])  # the frames without the index
    return path


def _rotated(path: Path) -> Path:
    """A clip whose track header says: show it turned 90 degrees."""
    data = bytearray(_encode(path, fmt="mp4", codec="libx264", size=(64, 32)).read_bytes())
    tkhd = data.index(b"tkhd")
    matrix = tkhd + 4 + 4 + 4 * 5 + 8 + 8  # version/flags, 5 words (v0), reserved, layer/group/volume/reserved
    data[matrix : matrix + 36] = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)
    path.write_bytes(bytes(data))
    return path


def _interlaced(path: Path) -> Path:
    return _encode(
        path, fmt="mp4", codec="libx264", size=(64, 48), options={"x264-params": "threads=1:tff=1", "flags": "+ildct"}
    )


ZOO: dict[str, tuple[str, Callable[[Path], Path]]] = {
    "zero-bytes": ("empty.mp4", _bytes(b"")),
    "junk": ("junk.mp4", _bytes(bytes(range(256)) * 40)),
    "truncated-mp4": ("truncated.mp4", _truncated),
    "mp4-without-moov": ("no-moov.mp4", _no_moov),
    "png": ("still.png", lambda p: _still(p, "png", "rgb24")),
    "jpeg": ("still.jpg", lambda p: _still(p, "mjpeg", "yuvj420p")),
    "audio-only": ("tone.wav", _tone),
    "variable-frame-rate": (
        "vfr.mp4",
        lambda p: _encode(p, fmt="mp4", codec="libx264", times=[0, 1, 2, 5, 6, 12, 13, 14, 20, 30, 31, 32]),
    ),
    "rotation-tag": ("rotated.mp4", _rotated),
    "odd-size-17x9": (
        "odd.mkv",
        lambda p: _encode(p, fmt="matroska", codec="libx264", size=(17, 9), pix_fmt="yuv444p"),
    ),
    "10-bit": ("ten-bit.mp4", lambda p: _encode(p, fmt="mp4", codec="libx264", pix_fmt="yuv420p10le")),
    "yuv444": ("yuv444.mp4", lambda p: _encode(p, fmt="mp4", codec="libx264", pix_fmt="yuv444p")),
    "vp9": ("clip.webm", lambda p: _encode(p, fmt="webm", codec="libvpx-vp9", options={"deadline": "realtime"})),
    "mjpeg": ("clip.avi", lambda p: _encode(p, fmt="avi", codec="mjpeg", pix_fmt="yuvj420p")),
    "interlaced": ("interlaced.mp4", _interlaced),
    "5.1-audio": ("surround.mp4", lambda p: _encode(p, fmt="mp4", codec="libx264", audio_layout="5.1")),
    "one-frame": ("one-frame.mp4", _one_frame),
    "decode-bomb": ("bomb.mp4", decode_bomb),
    "late-decode-bomb": ("late-bomb.mp4", late_bomb),
}
"""Case name → (file name, maker). Every case must complete or fail with a clear error."""
