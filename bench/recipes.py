"""Recipe benchmark: three real recipes through the whole stack, each against one ffmpeg command.

Starts one `artdag up --executors 2` (a temporary ARTDAG_HOME, SQLite, its own nats-server) and
times each case end to end over HTTP: `POST /runs` → polling `GET /runs/{id}` → the output
downloaded from `GET /cache/{cid}/raw`. In the same run it times the single ffmpeg command that
does the same job (ffmpeg's default threads, x264 `-preset veryfast -crf 18`, AAC: artdag's
output settings), and prints the medians, the ratio artdag/ffmpeg (target ≤ 1.5×) and the
output frame count of both sides (the jobs are the same size).

  a  beat-sync: the README's recipe (libs/artdag_common/examples/beat-sync.yaml: ANALYZE beats,
     BEAT_SYNC mode stretch, the track muxed under the video) on a 20 s 1280x720 30 fps
     H.264/AAC clip and a 35 s 117 BPM track (WAV, 69 beats: kick on the beats, snare on 2 and 4,
     hi-hats on eighths, bass line, chord pad, a little noise). ffmpeg: the slices and speeds the
     run planned (read back from `GET /api/run/{id}/plan`: SEGMENT start/end, TRANSFORM speed), as
     split → trim=start:end,setpts=(PTS-STARTPTS)/speed per slice → concat=n=N:v=1:a=0 → fps=30,
     the track as the sound, -shortest.
  b  ten cuts: 10 SEGMENTs (~3 s each, precise) of a 60 s 720p30 clip → one SEQUENCE (cut).
     ffmpeg: split/asplit → trim/atrim per segment → concat=n=10:v=1:a=1.
  d  crossfades: the 60 s clip as three 20 s SEGMENTs → SEQUENCE with 1 s crossfades (58 s out).
     ffmpeg: split/asplit → trim/atrim per part → xfade=transition=fade / acrossfade between them.
  c  effect chain: 5 EFFECT steps on the 60 s clip; ffmpeg: one -vf chain, a filter per effect:
       brightness_contrast {brightness: 0.1, contrast: 1.2}          → eq=brightness=0.1:contrast=1.2
       saturation {amount: 1.5}                                      → hue=s=1.5
       hue_shift {degrees: 90}                                       → hue=h=90
       vignette {strength: 0.6, radius: 0.6, softness: 0.5}          → vignette (angle PI/4)
       invert {intensity: 1}                                         → negate
     and the sound copied (-c:a copy), as artdag carries it through. The pictures differ a little
     (ffmpeg's filters work in YUV), the work per frame is comparable.

The inputs are synthesized like real media (`artdag_cli.demo_media` writes colour bars and
click tracks, which are not): the clips have moving gradients, a panned detailed texture, moving
shapes, film grain and room-tone sound (x264 veryfast crf 20, 2 s GOPs). Every timed artdag
repeat renders everything: each uploads its own copy of the inputs (the clip remuxed with a
different `comment` tag, the track with its last sample changed by one LSB), so no step id repeats
(the dry run's `cached` count, printed, shows it). Before each case the dry run (`POST /api/plan`,
the same body) gives the step count, `cost_frames` and, when the planner reports it,
`encodes_per_output_frame`. Case a also times one fully cached re-run (same recipe and inputs).

    .venv/bin/python bench/recipes.py [--repeat 3] [--cases a,b,c,d] [--keep DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import math
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import numpy.typing as npt
from proc_cpu import descendants_cpu

from artdag_common.nats_server import free_port
from artdag_common.tokens import load_token

ROOT = Path(__file__).resolve().parent.parent
BEAT_SYNC_RECIPE = ROOT / "libs" / "artdag_common" / "examples" / "beat-sync.yaml"
WIDTH, HEIGHT, FPS = 1280, 720, 30
SAMPLE_RATE = 44_100
BPM = 117.0
TRACK_S = 35.0
TARGET = 1.5
FFMPEG = ["ffmpeg", "-nostdin", "-v", "error", "-y"]
X264 = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p"]
MP4 = ["-movflags", "+faststart"]

F32 = npt.NDArray[np.float32]
Slice = tuple[float, float, float]
"""(start, end, speed) of one beat-sync slice."""
F64 = npt.NDArray[np.float64]
I16 = npt.NDArray[np.int16]


# -- media -----------------------------------------------------------------------------------


def smooth(a: npt.NDArray[Any], size: int, axis: int = -1) -> F64:
    """Moving average over `size` samples along `axis`: same length, centred, edges repeated."""
    axis %= a.ndim
    before = size // 2
    widths = [(before + 1, size - before - 1) if ax == axis else (0, 0) for ax in range(a.ndim)]
    sums = np.cumsum(np.pad(a, widths, mode="edge"), axis=axis, dtype=np.float64)
    n = a.shape[axis]
    return (np.take(sums, np.arange(size, size + n), axis=axis) - np.take(sums, np.arange(n), axis=axis)) / size


def blur(a: npt.NDArray[Any], size: int) -> F64:
    return smooth(smooth(a, size, 0), size, 1)


@dataclass(frozen=True)
class Shape:
    """A coloured disc or box on a Lissajous path."""

    disc: bool
    size: int
    luma: int
    u: int
    v: int
    fx: float
    fy: float
    phase: float


def _shapes(rng: np.random.Generator) -> list[Shape]:
    return [
        Shape(
            disc=bool(k % 2),
            size=int(rng.integers(30, 90)) * 2,
            luma=int(rng.integers(40, 220)),
            u=int(rng.integers(70, 190)),
            v=int(rng.integers(70, 190)),
            fx=float(rng.uniform(0.03, 0.17)),
            fy=float(rng.uniform(0.04, 0.21)),
            phase=float(rng.uniform(0, 2 * math.pi)),
        )
        for k in range(7)
    ]


def _room_tone(duration_s: float, rng: np.random.Generator) -> F32:
    """Stereo (2, n) background sound: brown-ish noise, a hum and a slowly wandering tone."""
    n = round(duration_s * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    out = np.empty((2, n), dtype=np.float32)
    for ch in range(2):
        white = rng.standard_normal(n)
        brown = smooth(np.cumsum(white) * 0.02, 441)
        brown -= smooth(brown, 22_050)  # no drift
        tone = 0.03 * np.sin(2 * np.pi * (330 + 40 * np.sin(2 * np.pi * 0.07 * t + ch)) * t)
        out[ch] = 0.08 * brown / max(1e-9, float(np.abs(brown).max())) + 0.02 * np.sin(2 * np.pi * 60 * t) + tone
        out[ch] += 0.004 * white
    return out


def write_footage(path: Path, duration_s: float, seed: int = 7) -> None:
    """A 1280x720 30 fps H.264/AAC MP4 that encodes like camera footage, not like flat test colours."""
    rng = np.random.default_rng(seed)
    n_frames = round(duration_s * FPS)
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    phase = ((xs / WIDTH * 1.3 + ys / HEIGHT * 0.7) * 1024).astype(np.int32)
    wave_lut = (60 + 70 * (0.5 + 0.5 * np.sin(np.arange(1024) * 2 * np.pi / 1024))).astype(np.int16)
    sky = (40 * (1 - ys / HEIGHT)).astype(np.int16)
    pad = 160
    noise = rng.standard_normal((HEIGHT + 2 * pad, WIDTH + 2 * pad)).astype(np.float32)
    # Detail at three scales (grain of a surface, leaves, patches), panned like a moving camera.
    medium, coarse = blur(noise, 9), blur(noise, 31)
    texture = (6 * noise + 10 * medium / medium.std() + 14 * coarse / coarse.std()).astype(np.int16)
    grain = [(3 * rng.standard_normal((HEIGHT, WIDTH))).astype(np.int16) for _ in range(6)]
    cys, cxs = np.mgrid[0 : HEIGHT // 2, 0 : WIDTH // 2].astype(np.float32)
    chroma_phase = ((cxs / (WIDTH // 2) * 0.9 - cys / (HEIGHT // 2) * 0.6) * 1024).astype(np.int32)
    u_lut = (128 + 35 * np.sin(np.arange(1024) * 2 * np.pi / 1024)).astype(np.uint8)
    v_lut = (128 + 30 * np.cos(np.arange(1024) * 2 * np.pi / 1024)).astype(np.uint8)
    shapes = _shapes(rng)
    discs = {s.size: np.hypot(*(np.mgrid[0 : s.size, 0 : s.size] - (s.size - 1) / 2)) <= s.size / 2 for s in shapes}
    sound = _room_tone(duration_s, rng)
    buffer = np.empty((HEIGHT * 3 // 2, WIDTH), dtype=np.uint8)
    y_plane = buffer[:HEIGHT]
    uv = buffer[HEIGHT:].reshape(2, HEIGHT // 2, WIDTH // 2)

    with av.open(str(path), mode="w", format="mp4") as out:
        video = out.add_stream(
            "libx264", rate=FPS, options={"preset": "veryfast", "crf": "20", "x264-params": "keyint=60:min-keyint=60"}
        )
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        audio = out.add_stream("aac", rate=SAMPLE_RATE)
        audio.codec_context.layout = "stereo"
        audio.codec_context.format = "fltp"
        audio.codec_context.bit_rate = 128_000
        audio_done = 0
        for index in range(n_frames):
            t = index / FPS
            luma = wave_lut[(phase + int(t * 0.15 * 1024)) & 1023]
            luma += sky
            dx = pad + int(pad * 0.9 * math.sin(2 * math.pi * t / 13))
            dy = pad + int(pad * 0.9 * math.sin(2 * math.pi * t / 9 + 1))
            luma += texture[dy : dy + HEIGHT, dx : dx + WIDTH]
            luma += grain[index % len(grain)]
            np.clip(luma, 16, 235, out=luma)
            y_plane[:] = luma
            shift = int(t * 0.05 * 1024)
            uv[0] = u_lut[(chroma_phase + shift) & 1023]
            uv[1] = v_lut[(chroma_phase - shift) & 1023]
            for s in shapes:
                x = int((WIDTH - s.size) * (0.5 + 0.5 * math.sin(2 * math.pi * s.fx * t + s.phase))) & ~1
                y = int((HEIGHT - s.size) * (0.5 + 0.5 * math.sin(2 * math.pi * s.fy * t + 2 * s.phase))) & ~1
                box = y_plane[y : y + s.size, x : x + s.size]
                half = s.size // 2
                if s.disc:
                    mask = discs[s.size]
                    box[mask] = (box[mask] // 4 + s.luma * 3 // 4).astype(np.uint8)
                    cmask = mask[::2, ::2]
                    uv[0, y // 2 : y // 2 + half, x // 2 : x // 2 + half][cmask] = s.u
                    uv[1, y // 2 : y // 2 + half, x // 2 : x // 2 + half][cmask] = s.v
                else:
                    box[:] = box // 4 + s.luma * 3 // 4
                    uv[0, y // 2 : y // 2 + half, x // 2 : x // 2 + half] = s.u
                    uv[1, y // 2 : y // 2 + half, x // 2 : x // 2 + half] = s.v
            frame = av.VideoFrame.from_ndarray(buffer, format="yuv420p")
            frame.pts = index
            frame.time_base = Fraction(1, FPS)
            out.mux(video.encode(frame))
            until = sound.shape[1] if index == n_frames - 1 else (index + 1) * SAMPLE_RATE // FPS
            while audio_done < until:
                count = min(1024, until - audio_done)
                aframe = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(sound[:, audio_done : audio_done + count]), format="fltp", layout="stereo"
                )
                aframe.sample_rate = SAMPLE_RATE
                aframe.pts = audio_done
                aframe.time_base = Fraction(1, SAMPLE_RATE)
                out.mux(audio.encode(aframe))
                audio_done += count
        out.mux(video.encode(None))
        out.mux(audio.encode(None))


def _add(track: F64, start_s: float, sound: F64) -> None:
    start = round(start_s * SAMPLE_RATE)
    end = min(track.shape[-1], start + sound.shape[-1])
    if end > start:
        track[..., start:end] += sound[..., : end - start]


def synth_music(duration_s: float = TRACK_S, bpm: float = BPM, seed: int = 3) -> F64:
    """A stereo (2, n) 4/4 pop loop: kick, snare on 2 and 4, eighth hi-hats, bass, chord pad, noise."""
    rng = np.random.default_rng(seed)
    n = round(duration_s * SAMPLE_RATE)
    mix = np.zeros((2, n))
    beat = 60.0 / bpm
    first = 0.1

    def env_t(seconds: float) -> F64:
        return np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE

    t = env_t(0.4)
    kick = np.sin(2 * np.pi * np.cumsum(45 + 110 * np.exp(-t * 35)) / SAMPLE_RATE) * np.exp(-t * 9)
    t = env_t(0.25)
    snare_noise = rng.standard_normal(t.size)
    snare_noise -= smooth(snare_noise, 8)
    snare = 0.5 * snare_noise * np.exp(-t * 16) + 0.5 * np.sin(2 * np.pi * 190 * t) * np.exp(-t * 28)
    t = env_t(0.06)
    hat_noise = rng.standard_normal(t.size)
    hat = np.diff(hat_noise, prepend=0.0) * np.exp(-t * 70)
    # Am F C G, one chord a bar (MIDI note numbers).
    chords = [(57, 60, 64), (53, 57, 60), (48, 52, 55), (55, 59, 62)]
    roots = [45, 41, 36, 43]

    def hz(note: int) -> float:
        return float(440.0 * 2 ** ((note - 69) / 12))

    n_beats = int((duration_s - first) / beat) + 1
    for k in range(n_beats):
        at = first + k * beat
        _add(mix, at, np.stack([0.9 * kick, 0.9 * kick]))
        if k % 4 in (1, 3):
            _add(mix, at, np.stack([0.55 * snare, 0.5 * snare]))
        for half, level in ((0.0, 0.22), (0.5, 0.14)):
            _add(mix, at + half * beat, np.stack([0.7 * level * hat, level * hat]))
        bar = (k // 4) % len(chords)
        for half in (0.0, 0.5):
            note = roots[bar] + (12 if (k % 4 == 3 and half) else 0)
            t = env_t(beat / 2 * 0.95)
            bass = (np.sin(2 * np.pi * hz(note) * t) + 0.3 * np.sin(4 * np.pi * hz(note) * t)) * np.exp(-t * 5)
            bass *= np.minimum(1.0, t * 200)
            _add(mix, at + half * beat, np.stack([0.35 * bass, 0.35 * bass]))
        if k % 4 == 0:
            t = env_t(4 * beat + 0.3)
            shape = np.minimum(1.0, t / 0.15) * np.minimum(1.0, np.maximum(0.0, (4 * beat + 0.3 - t) / 0.3))
            for ch, detune in ((0, 0.997), (1, 1.003)):
                pad_wave = sum(
                    np.sin(2 * np.pi * hz(note) * detune * t * h) / h for note in chords[bar] for h in (1, 2, 3)
                )
                _add(mix[ch], at, 0.035 * shape * pad_wave)
    mix += 0.01 * rng.standard_normal(mix.shape)
    return 0.9 * mix / float(np.abs(mix).max())


def write_wav(path: Path, samples: F64, variant: int = 0) -> None:
    """16-bit stereo WAV; `variant` changes the last sample by that many LSBs (other bytes, same music)."""
    pcm = np.clip(np.round(samples * 32767), -32768, 32767).astype(np.int16)
    pcm[-1, -1] = np.int16(int(pcm[-1, -1]) + (variant if pcm[-1, -1] < 0 else -variant))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(np.ascontiguousarray(pcm.T).tobytes())


def tagged_copy(src: Path, dst: Path, tag: str) -> None:
    """The same streams remuxed with a `comment` tag: other bytes (another cid), the same pictures."""
    with av.open(str(src)) as inp, av.open(str(dst), mode="w", format="mp4") as out:
        out.metadata["comment"] = tag
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams if s.type in ("video", "audio")}
        for packet in inp.demux():
            if packet.dts is None or packet.stream.index not in streams:
                continue
            packet.stream = streams[packet.stream.index]
            out.mux(packet)


def frame_count(path: Path) -> tuple[int, float]:
    """Video frames (packets) and duration in seconds of an MP4."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for packet in container.demux(stream) if packet.size)
        duration = float(container.duration or 0) / 1_000_000
    return frames, duration


# -- recipes and the ffmpeg equivalents --------------------------------------------------------

# Ten cuts in order through the clip, 2.6–3.4 s each (start, end).
_STARTS = [round(1.23 + 5.8 * k + 0.37 * (k % 3), 3) for k in range(10)]
SEGMENTS_B = [(start, round(start + 3.0 + 0.2 * ((k * 7) % 5 - 2), 3)) for k, start in enumerate(_STARTS)]

EFFECTS_C: list[tuple[str, dict[str, float], str]] = [
    ("brightness_contrast", {"brightness": 0.1, "contrast": 1.2}, "eq=brightness=0.1:contrast=1.2"),
    ("saturation", {"amount": 1.5}, "hue=s=1.5"),
    ("hue_shift", {"degrees": 90.0}, "hue=h=90"),
    ("vignette", {"strength": 0.6, "radius": 0.6, "softness": 0.5}, "vignette=angle=PI/4"),
    ("invert", {"intensity": 1.0}, "negate"),
]


def recipe_b() -> str:
    lines = ["name: ten-cuts", "inputs:", "  video: {type: video, description: 60 s clip}", "steps:"]
    for k, (start, end) in enumerate(SEGMENTS_B):
        lines += [
            f"  - id: cut{k}",
            "    type: SEGMENT",
            "    inputs: [video]",
            f"    config: {{start: {start}, end: {end}}}",
        ]
    names = ", ".join(f"cut{k}" for k in range(len(SEGMENTS_B)))
    lines += ["  - id: joined", "    type: SEQUENCE", f"    inputs: [{names}]", "    config: {transition: {type: cut}}"]
    return "\n".join([*lines, "output: joined", ""])


def recipe_c() -> str:
    lines = ["name: effect-chain", "inputs:", "  video: {type: video, description: 60 s clip}", "steps:"]
    previous = "video"
    for name, params, _ in EFFECTS_C:
        args = ", ".join(f"{key}: {value}" for key, value in params.items())
        lines += [f"  - id: {name}", "    type: EFFECT", f"    inputs: [{previous}]"]
        lines += [f"    config: {{effect: {name}, params: {{{args}}}}}"]
        previous = name
    return "\n".join([*lines, f"output: {previous}", ""])


PARTS_D = [(0.0, 20.0), (20.0, 40.0), (40.0, 60.0)]
CROSSFADE_D = 1.0


def recipe_d() -> str:
    lines = ["name: crossfades", "inputs:", "  video: {type: video, description: 60 s clip}", "steps:"]
    for k, (start, end) in enumerate(PARTS_D):
        lines += [
            f"  - id: part{k}",
            "    type: SEGMENT",
            "    inputs: [video]",
            f"    config: {{start: {start}, end: {end}}}",
        ]
    names = ", ".join(f"part{k}" for k in range(len(PARTS_D)))
    transition = f"{{type: crossfade, duration: {CROSSFADE_D}}}"
    lines += [
        "  - id: faded",
        "    type: SEQUENCE",
        f"    inputs: [{names}]",
        f"    config: {{transition: {transition}}}",
    ]
    return "\n".join([*lines, "output: faded", ""])


def ffmpeg_a(clip: Path, track: Path, slices: list[Slice], out: Path) -> list[str]:
    n = len(slices)
    parts = ["[0:v]split=" + str(n) + "".join(f"[s{k}]" for k in range(n))]
    parts += [
        f"[s{k}]trim=start={a}:end={b},setpts=(PTS-STARTPTS)/{speed}[v{k}]" for k, (a, b, speed) in enumerate(slices)
    ]
    parts.append("".join(f"[v{k}]" for k in range(n)) + f"concat=n={n}:v=1:a=0,fps={FPS}[v]")
    graph = ["-filter_complex", ";".join(parts), "-map", "[v]", "-map", "1:a"]
    return [*FFMPEG, "-i", str(clip), "-i", str(track), *graph, *X264, "-c:a", "aac", "-shortest", *MP4, str(out)]


def ffmpeg_b(clip: Path, out: Path) -> list[str]:
    n = len(SEGMENTS_B)
    parts = [
        "[0:v]split=" + str(n) + "".join(f"[s{k}]" for k in range(n)),
        "[0:a]asplit=" + str(n) + "".join(f"[t{k}]" for k in range(n)),
    ]
    for k, (a, b) in enumerate(SEGMENTS_B):
        parts.append(f"[s{k}]trim=start={a}:end={b},setpts=PTS-STARTPTS[v{k}]")
        parts.append(f"[t{k}]atrim=start={a}:end={b},asetpts=PTS-STARTPTS[a{k}]")
    parts.append("".join(f"[v{k}][a{k}]" for k in range(n)) + f"concat=n={n}:v=1:a=1[v][a]")
    graph = ["-filter_complex", ";".join(parts), "-map", "[v]", "-map", "[a]"]
    return [*FFMPEG, "-i", str(clip), *graph, *X264, "-c:a", "aac", *MP4, str(out)]


def ffmpeg_d(clip: Path, out: Path) -> list[str]:
    n = len(PARTS_D)
    parts = [
        "[0:v]split=" + str(n) + "".join(f"[s{k}]" for k in range(n)),
        "[0:a]asplit=" + str(n) + "".join(f"[t{k}]" for k in range(n)),
    ]
    for k, (a, b) in enumerate(PARTS_D):
        parts.append(f"[s{k}]trim=start={a}:end={b},setpts=PTS-STARTPTS[v{k}]")
        parts.append(f"[t{k}]atrim=start={a}:end={b},asetpts=PTS-STARTPTS[a{k}]")
    video, audio, length = "v0", "a0", PARTS_D[0][1] - PARTS_D[0][0]
    for k in range(1, n):
        offset = length - CROSSFADE_D
        parts.append(f"[{video}][v{k}]xfade=transition=fade:duration={CROSSFADE_D}:offset={offset}[x{k}]")
        parts.append(f"[{audio}][a{k}]acrossfade=d={CROSSFADE_D}[m{k}]")
        video, audio = f"x{k}", f"m{k}"
        length += PARTS_D[k][1] - PARTS_D[k][0] - CROSSFADE_D
    graph = ["-filter_complex", ";".join(parts), "-map", f"[{video}]", "-map", f"[{audio}]"]
    return [*FFMPEG, "-i", str(clip), *graph, *X264, "-c:a", "aac", *MP4, str(out)]


def ffmpeg_c(clip: Path, out: Path) -> list[str]:
    chain = ",".join(f for _, _, f in EFFECTS_C)
    return [*FFMPEG, "-i", str(clip), "-vf", chain, *X264, "-c:a", "copy", *MP4, str(out)]


# -- the stack ---------------------------------------------------------------------------------


class Stack:
    """`artdag up --executors 2` on its own home, driven over HTTP with the local user's token."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.log = home / "up.log"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=600)

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ARTDAG_", "NATS_", "DATABASE_"))}
        env["ARTDAG_LOG_LEVEL"] = "WARNING"
        self.home.mkdir(parents=True, exist_ok=True)
        command = [str(Path(sys.executable).parent / "artdag"), "up", "--home", str(self.home)]
        command += ["--port", str(self.port), "--executors", "2"]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"artdag up exited with {self.proc.returncode}:\n{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if self.http.get("/health").status_code == 200:
                    break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"the stack did not become healthy in 120 s:\n{self.tail()}")
        token = load_token(self.home)
        if token is None:
            raise RuntimeError("artdag up saved no token")
        self.http.headers["Authorization"] = f"Bearer {token}"

    def tail(self) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
        return ""

    def stop(self) -> None:
        self.http.close()
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def _json(self, response: httpx.Response) -> Any:
        if response.is_error:
            raise RuntimeError(
                f"{response.request.method} {response.request.url.path}: {response.status_code} {response.text}"
            )
        return response.json()

    def upload(self, path: Path) -> str:
        with path.open("rb") as f:
            reply = self._json(self.http.post("/cache/upload", files={"file": (path.name, f)}))
        return str(reply["cid"])

    def dry_run(self, recipe: str, inputs: dict[str, str]) -> dict[str, Any]:
        reply: dict[str, Any] = self._json(self.http.post("/api/plan", json={"recipe": recipe, "inputs": inputs}))
        return reply

    def render(self, recipe: str, inputs: dict[str, str], out: Path) -> tuple[float, str]:
        """Submit, wait, download: the seconds from the submit to the output on disk, and the run id."""
        started = time.perf_counter()
        run_id = str(self._json(self.http.post("/runs", json={"recipe": recipe, "inputs": inputs}))["run_id"])
        while True:
            state = self._json(self.http.get(f"/runs/{run_id}"))
            if state["status"] == "completed":
                break
            if state["status"] in ("failed", "cancelled"):
                raise RuntimeError(f"run {run_id} {state['status']}: {state.get('error')}")
            time.sleep(0.05)
        with self.http.stream("GET", f"/cache/{state['output_cid']}/raw") as response, out.open("wb") as f:
            response.raise_for_status()
            for chunk in response.iter_bytes(1 << 20):
                f.write(chunk)
        return time.perf_counter() - started, run_id

    def cpu(self) -> float:
        """CPU seconds the whole stack (every service, executor worker and nats-server) used so far."""
        return sum(descendants_cpu(self.proc.pid, include_root=True).values()) if self.proc is not None else 0.0

    def get(self, path: str) -> Any:
        return self._json(self.http.get(path))


def _piece(stages: list[dict[str, Any]]) -> Slice | None:
    """(start, end, speed) of a fused chain's stages (CHAIN, or one piece of a CUTS step), if it cuts."""
    cut = next((st["config"] for st in stages if st["type"] == "SEGMENT"), None)
    if cut is None or "start" not in cut or "end" not in cut:
        return None
    speed = 1.0
    for stage in stages:
        if stage["type"] == "TRANSFORM":
            speed *= float(stage["config"].get("speed", 1.0))
    return float(cut["start"]), float(cut["end"]), speed


def beat_sync_slices(stack: Stack, run_id: str, video_cid: str, clip: Path) -> tuple[list[Slice], str]:
    """(start, end, speed) of each slice, in order, from the run's plan (or, failing that, its analysis).

    The plan holds them as SEGMENT steps (each maybe followed by a TRANSFORM speed step), as CHAIN
    steps (a SEGMENT stage and a TRANSFORM stage fused) or as the pieces of CUTS steps.
    """
    plan = stack.get(f"/api/run/{run_id}/plan")
    sources = {s["step_id"] for s in plan["steps"] if s["node_type"] == "SOURCE" and s.get("source_cid") == video_cid}
    speeds = {
        tuple(s["inputs"]): float(s["config"].get("speed", 1.0)) for s in plan["steps"] if s["node_type"] == "TRANSFORM"
    }
    slices: list[Slice] = []
    kinds: set[str] = set()
    for step in plan["steps"]:
        if not set(step["inputs"]) & sources:
            continue
        config, kind = step["config"], step["node_type"]
        found: list[Slice | None] = []
        if kind == "SEGMENT" and "start" in config and "end" in config:
            found.append((float(config["start"]), float(config["end"]), speeds.get((step["step_id"],), 1.0)))
        elif kind == "CHAIN":
            found.append(_piece(config.get("stages", [])))
        elif kind == "CUTS":
            found += [_piece(piece.get("stages", [])) for piece in config.get("pieces", [])]
        if pieces := [p for p in found if p is not None]:
            slices += pieces
            kinds.add(kind)
    if slices:
        return sorted(slices), f"GET /api/run/{{id}}/plan ({', '.join(sorted(kinds))} steps)"
    # A plan in a form not known here: the planner's own formula on the analysis's beats.
    analyses = stack.get(f"/api/run/{run_id}/analysis")["analyses"]
    beats = next(
        a["result"]["audio"]["beats"]["beat_times"] for a in analyses.values() if "audio" in a.get("result", {})
    )
    intervals = list(itertools.pairwise(beats))
    part = frame_count(clip)[1] / len(intervals)
    slices = [
        (round(k * part, 4), round((k + 1) * part, 4), round(min(4.0, max(0.25, part / (b - a))), 4))
        for k, (a, b) in enumerate(intervals)
    ]
    return slices, "GET /api/run/{id}/analysis (beats, the planner's stretch formula)"


# -- the benchmark -----------------------------------------------------------------------------


@dataclass
class Result:
    case: str
    artdag: list[float] = field(default_factory=list)
    ffmpeg: list[float] = field(default_factory=list)
    frames: tuple[int, int] = (0, 0)
    durations: tuple[float, float] = (0.0, 0.0)
    steps: int = 0
    cost_frames: int = 0
    encodes: str = "n/a"
    cached_rerun: float | None = None
    artdag_cpu: list[float] = field(default_factory=list)
    ffmpeg_cpu: list[float] = field(default_factory=list)


def dry_run_summary(stack: Stack, recipe: str, inputs: dict[str, str], result: Result) -> None:
    reply = stack.dry_run(recipe, inputs)
    encoded, output = reply.get("frames_encoded", "n/a"), reply.get("output_frames", "n/a")
    result.steps = len(reply["plan"]["steps"])
    result.cost_frames = int(reply["cost_frames"])
    per_frame = reply.get("encodes_per_output_frame")
    result.encodes = "n/a" if per_frame is None else f"{float(per_frame):.2f}"
    print(
        f"  dry run: {result.steps} steps ({reply['to_run']} to run, {reply['cached']} cached), "
        f"cost_frames {result.cost_frames}, frames_encoded {encoded}, output_frames {output}, "
        f"encodes_per_output_frame {result.encodes}",
        flush=True,
    )


def children_cpu() -> float:
    """CPU seconds (user + system) of this process's finished children (the ffmpeg runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str]) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one command."""
    cpu, started = children_cpu(), time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started, children_cpu() - cpu


def run_case(case: str, stack: Stack, media: dict[str, Path], work: Path, repeat: int) -> Result:
    result = Result(case)
    ours, theirs = work / f"{case}-artdag.mp4", work / f"{case}-ffmpeg.mp4"
    slices: list[Slice] = []
    first_inputs: dict[str, str] = {}
    recipe = {"a": BEAT_SYNC_RECIPE.read_text(), "b": recipe_b(), "c": recipe_c(), "d": recipe_d()}[case]
    clip = media["clip20"] if case == "a" else media["clip60"]
    for r in range(repeat):
        copy = work / f"{case}-input{r}.mp4"
        tagged_copy(clip, copy, f"bench {case} repeat {r}")
        inputs = {"video": stack.upload(copy)}
        if case == "a":
            track = work / f"a-track{r}.wav"
            write_wav(track, media_music(media), variant=r + 1)
            inputs["audio"] = stack.upload(track)
        dry_run_summary(stack, recipe, inputs, result)
        cpu = stack.cpu()
        seconds, run_id = stack.render(recipe, inputs, ours)
        result.artdag.append(seconds)
        result.artdag_cpu.append(stack.cpu() - cpu)
        if case == "a" and not slices:
            first_inputs = inputs
            slices, where = beat_sync_slices(stack, run_id, inputs["video"], clip)
            speeds = [s for _, _, s in slices]
            print(f"  {len(slices)} slices from {where}, speeds {min(speeds):.3f}–{max(speeds):.3f}", flush=True)
        if case == "a":
            command = ffmpeg_a(clip, media["track"], slices, theirs)
        else:
            command = {"b": ffmpeg_b, "c": ffmpeg_c, "d": ffmpeg_d}[case](clip, theirs)
        seconds, cpu = timed(command)
        result.ffmpeg.append(seconds)
        result.ffmpeg_cpu.append(cpu)
        print(
            f"  repeat {r + 1}: artdag {result.artdag[-1]:.2f} s ({result.artdag_cpu[-1]:.1f} s CPU), "
            f"ffmpeg {seconds:.2f} s ({cpu:.1f} s CPU); load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    if case == "a":
        print("  cached re-run (the first repeat's recipe and inputs):", flush=True)
        dry_run_summary(stack, recipe, first_inputs, Result(case))
        result.cached_rerun, _ = stack.render(recipe, first_inputs, work / "a-artdag-cached.mp4")
        print(f"  cached re-run: {result.cached_rerun:.3f} s", flush=True)
    (ours_frames, ours_s), (their_frames, their_s) = frame_count(ours), frame_count(theirs)
    result.frames, result.durations = (ours_frames, their_frames), (ours_s, their_s)
    return result


def media_music(media: dict[str, Path]) -> F64:
    """The track's samples (read back from the generated WAV, so every variant is the same music)."""
    with wave.open(str(media["track"]), "rb") as f:
        pcm = np.frombuffer(f.readframes(f.getnframes()), dtype=np.int16).reshape(-1, 2).T
    return pcm.astype(np.float64) / 32767


def make_media(work: Path, cases: list[str]) -> dict[str, Path]:
    media: dict[str, Path] = {}
    started = time.perf_counter()
    if "a" in cases:
        media["clip20"] = work / "clip20.mp4"
        write_footage(media["clip20"], 20.0)
        media["track"] = work / "track.wav"
        write_wav(media["track"], synth_music())
    if {"b", "c", "d"} & set(cases):
        media["clip60"] = work / "clip60.mp4"
        write_footage(media["clip60"], 60.0)
    sizes = ", ".join(f"{p.name} {p.stat().st_size / 1e6:.1f} MB" for p in media.values())
    print(f"media generated in {time.perf_counter() - started:.1f} s: {sizes}", flush=True)
    return media


TITLES = {
    "a": "a beat-sync (README)",
    "b": "b 10 SEGMENT→SEQUENCE",
    "c": "c 5 EFFECT chain",
    "d": "d 3 parts, crossfades",
}


def print_table(results: list[Result]) -> None:
    """One line a case: median wall-clock seconds and ratio, median CPU seconds and ratio, job size."""
    print()
    print(
        f"{'case':23} {'artdag':>8} {'ffmpeg':>8} {'ratio':>6} {'target':>6} {'CPU artdag':>10} {'ffmpeg':>7}"
        f" {'ratio':>6} {'frames a/f':>10} {'steps':>5} {'cost_frames':>11} {'enc/out':>7}"
    )
    for r in results:
        ours, theirs = statistics.median(r.artdag), statistics.median(r.ffmpeg)
        cpu_ours, cpu_theirs = statistics.median(r.artdag_cpu), statistics.median(r.ffmpeg_cpu)
        frames = f"{r.frames[0]}/{r.frames[1]}"
        print(
            f"{TITLES[r.case]:23} {ours:7.2f}s {theirs:7.2f}s {ours / theirs:5.2f}x {TARGET:5.1f}x"
            f" {cpu_ours:9.1f}s {cpu_theirs:6.1f}s {cpu_ours / cpu_theirs:5.2f}x {frames:>10} {r.steps:5d}"
            f" {r.cost_frames:11d} {r.encodes:>7}  {'ok' if ours / theirs <= TARGET else 'over target'}"
        )
        if r.cached_rerun is not None:
            print(f"{'  cached re-run':23} {r.cached_rerun:7.3f}s")
    durations = ", ".join(f"{r.case} {r.durations[0]:.2f}/{r.durations[1]:.2f} s" for r in results)
    print(f"medians of {len(results[0].artdag)} repeats; output durations artdag/ffmpeg: {durations}")


@contextlib.contextmanager
def workspace(keep: Path | None) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="artdag-recipes-") as tmp:
        yield Path(tmp)
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            for path in Path(tmp).glob("*.*"):
                shutil.copy2(path, keep / path.name)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed repeats of each side (default 3)")
    parser.add_argument("--cases", default="a,b,c,d", help="which cases, comma-separated (default a,b,c,d)")
    parser.add_argument("--keep", type=Path, help="copy the generated inputs and the outputs here")
    args = parser.parse_args()
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    if unknown := [c for c in cases if c not in TITLES]:
        parser.error(f"unknown cases {unknown}: choose from {', '.join(TITLES)}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if shutil.which("ffmpeg") is None:
        print("ffmpeg is not on PATH: install it (apt-get install ffmpeg) to have the reference times", file=sys.stderr)
        return 2
    results = []
    with workspace(args.keep) as work:
        media = make_media(work, cases)
        print(
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (other work on the machine skews wall-clock)"
        )
        stack = Stack(work / "home")
        try:
            stack.start()
            for case in cases:
                print(f"case {TITLES[case]}:", flush=True)
                results.append(run_case(case, stack, media, work, args.repeat))
        except BaseException:
            print(stack.tail(), file=sys.stderr)
            raise
        finally:
            stack.stop()
    print_table(results)
    print(f"target: artdag end to end ≤ {TARGET}x the single ffmpeg command")
    return 0


if __name__ == "__main__":
    sys.exit(main())
