"""Beat-tracking benchmark: the analyzer against exact ground truth (and librosa, when installed).

Synthesizes pieces whose beat times are known exactly (click tracks and drum
patterns: 60–190 BPM, 3/4 and 4/4, swing, syncopation, half-time feel, a tempo
step, an accelerando and a ritardando, an intro without drums, noise, reverb),
writes them as WAV, runs `analyze_file` and, if importable, `librosa.beat.beat_track`
on the same files, and prints per piece and on average: F-measure (±70 ms, the
mir_eval definition, beats before 5 s ignored as mir_eval does), whether the tempo
is within 4%, and seconds of analysis per minute of audio. Then the time of a fresh
``import services.analyzer.features`` and the peak RSS of analysing a long input.

    .venv/bin/python bench/beats.py [--long-minutes 60] [--no-librosa]

librosa and mir_eval come from the optional ``bench`` extra; without them the
script still runs (our own F-measure, no librosa column).
"""

from __future__ import annotations

import argparse
import importlib
import multiprocessing
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from services.analyzer.features import AnalysisParams, analyze_file

SR = 44_100
ROOT = Path(__file__).resolve().parents[1]
FloatArray = npt.NDArray[np.float64]
ALL_AUDIO = ["beats", "energy", "spectrum", "onsets"]


# --- synthesis -------------------------------------------------------------------------------------------------


def _decay(seconds: float, rate: float) -> FloatArray:
    t = np.arange(int(seconds * SR)) / SR
    return np.exp(-t * rate)


def _kick(rng: np.random.Generator) -> FloatArray:
    t = np.arange(int(0.3 * SR)) / SR
    freq = 48 + 100 * np.exp(-t * 35)
    return 0.9 * np.sin(2 * np.pi * np.cumsum(freq) / SR) * np.exp(-t * 11)


def _snare(rng: np.random.Generator) -> FloatArray:
    t = np.arange(int(0.2 * SR)) / SR
    noise = rng.standard_normal(t.size) * np.exp(-t * 22)
    return 0.35 * noise + 0.35 * np.sin(2 * np.pi * 185 * t) * np.exp(-t * 25)


def _hat(rng: np.random.Generator) -> FloatArray:
    noise = np.diff(rng.standard_normal(int(0.06 * SR) + 1))
    return 0.12 * noise * _decay(0.06, 70)


def _click(rng: np.random.Generator, freq: float = 1000.0, gain: float = 0.6) -> FloatArray:
    t = np.arange(int(0.01 * SR)) / SR
    return gain * np.sin(2 * np.pi * freq * t) * np.exp(-t * 400)


SOUNDS: dict[str, Callable[[np.random.Generator], FloatArray]] = {
    "kick": _kick,
    "snare": _snare,
    "hat": _hat,
    "click": _click,
    "accent": lambda rng: _click(rng, 1600.0, 0.95),
}


def beat_grid(bpm: Callable[[float], float], duration: float, start: float = 0.0) -> FloatArray:
    """Beat times from `start` to `duration` for a tempo that may vary with time (integrated exactly enough)."""
    times = [start]
    while times[-1] < duration + 2:
        t = times[-1]
        # Midpoint rule on the tempo function makes ramps exact to well under a millisecond.
        half = 30.0 / bpm(t)
        times.append(t + 60.0 / bpm(t + half))
    return np.array(times)


@dataclass
class Piece:
    """A synthesized piece: a beat grid, a bar pattern on it, and what to add on top."""

    name: str
    bpm: Callable[[float], float]
    meter: int
    pattern: dict[str, list[float]]  # sound → positions in the bar, in beats
    duration: float = 30.0
    swing: float = 0.0  # delay of off-beat eighths, as a fraction of a beat (1/6 = triplet swing)
    intro: float = 0.0  # seconds of a drumless pad before the drums come in
    noise_db: float | None = None  # signal-to-noise ratio of added white noise
    reverb_s: float = 0.0  # decay time of a noise-tail reverb
    gains: dict[str, list[float]] = field(default_factory=dict)  # optional per-position gains
    seed: int = 1

    def beats(self) -> FloatArray:
        return beat_grid(self.bpm, self.duration, start=self.intro)

    def truth(self) -> FloatArray:
        grid = self.beats()
        return grid[grid < self.duration - 0.05]

    def render(self) -> FloatArray:
        rng = np.random.default_rng(self.seed)
        out = np.zeros(int((self.duration + 1) * SR))
        grid = self.beats()
        sounds = {name: SOUNDS[name](rng) for name in self.pattern}
        n_bars = len(grid) // self.meter
        for bar in range(n_bars):
            for name, positions in self.pattern.items():
                for i, pos in enumerate(positions):
                    k, frac = int(pos), pos - int(pos)
                    if abs(frac - 0.5) < 1e-9:
                        frac += self.swing
                    beat = bar * self.meter + k
                    if beat + 1 >= len(grid):
                        continue
                    when = grid[beat] + frac * (grid[beat + 1] - grid[beat])
                    if when >= self.duration:
                        continue
                    gain = self.gains.get(name, [1.0] * len(positions))[i]
                    start = round(when * SR)
                    sound = sounds[name] * gain * (1 + 0.05 * rng.standard_normal())
                    end = min(out.size, start + sound.size)
                    out[start:end] += sound[: end - start]
        if self.intro:
            t = np.arange(int(self.intro * SR)) / SR
            chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6))
            envelope = np.minimum(1, t / 2) * np.minimum(1, (self.intro - t) / 0.5)
            out[: t.size] += 0.08 * chord * envelope
        if self.reverb_s:
            tail = rng.standard_normal(int(self.reverb_s * SR)) * _decay(self.reverb_s, 6.9 / self.reverb_s)
            tail[0] = 1.0
            size = 1 << int(np.ceil(np.log2(out.size + tail.size)))
            wet = np.fft.irfft(np.fft.rfft(out, size) * np.fft.rfft(tail * 0.03, size), size)[: out.size]
            out = out + wet
        if self.noise_db is not None:
            power = np.mean(out**2)
            out = out + rng.standard_normal(out.size) * np.sqrt(power / 10 ** (self.noise_db / 10))
        out = out[: int(self.duration * SR)]
        return 0.9 * out / max(1e-9, float(np.abs(out).max()))


def _const(bpm: float) -> Callable[[float], float]:
    return lambda _t: bpm


def pieces() -> list[Piece]:
    """The benchmark set: at least 20 pieces covering the cases the tracker must handle."""
    eighths = [x / 2 for x in range(8)]
    rock = {"kick": [0.0, 2.0], "snare": [1.0, 3.0], "hat": eighths}
    return [
        Piece("click 60", _const(60), 4, {"click": [0, 1, 2, 3]}),
        Piece("click 120", _const(120), 4, {"click": [0, 1, 2, 3]}),
        Piece("click 190", _const(190), 4, {"click": [0, 1, 2, 3]}),
        Piece("click 3/4 accented 90", _const(90), 3, {"accent": [0], "click": [1, 2]}),
        Piece("rock 100", _const(100), 4, rock),
        Piece("rock 128", _const(128), 4, rock),
        Piece("rock 75", _const(75), 4, rock),
        Piece("waltz 150", _const(150), 3, {"kick": [0], "snare": [1, 2], "hat": [0, 1, 2]}),
        Piece("waltz 84", _const(84), 3, {"kick": [0], "snare": [1, 2], "hat": [0, 0.5, 1, 1.5, 2, 2.5]}),
        Piece("swing 120", _const(120), 4, {"kick": [0, 2], "snare": [1, 3], "hat": eighths}, swing=1 / 6),
        Piece(
            "syncopated funk 105",
            _const(105),
            4,
            {"kick": [0, 0.75, 2.5], "snare": [1, 3], "hat": [x / 4 for x in range(16)]},
        ),
        Piece("half-time 140", _const(140), 4, {"kick": [0], "snare": [2], "hat": [0, 1, 2, 3]}),
        Piece("dnb 174", _const(174), 4, {"kick": [0, 2.5], "snare": [1, 3], "hat": eighths}),
        Piece("tempo step 100→130", lambda t: 100 if t < 20 else 130, 4, rock, duration=40),
        Piece("accelerando 90→140", lambda t: 90 + 50 * min(1, t / 40), 4, rock, duration=40),
        Piece("ritardando 120→95", lambda t: 120 - 25 * min(1, t / 40), 4, rock, duration=40),
        Piece("pad intro + rock 110", _const(110), 4, rock, intro=8.0, duration=36),
        Piece("noisy rock 95 (6 dB SNR)", _const(95), 4, rock, noise_db=6.0),
        Piece("reverb rock 118", _const(118), 4, rock, reverb_s=1.5),
        Piece(
            "reverb+noise funk 100",
            _const(100),
            4,
            {"kick": [0, 1.5, 2.5], "snare": [1, 3], "hat": eighths},
            reverb_s=1.2,
            noise_db=10.0,
        ),
        Piece("jazz waltz 110 swung", _const(110), 3, {"kick": [0], "snare": [2], "hat": [0, 1, 1.5, 2]}, swing=1 / 6),
        Piece("ballad 66", _const(66), 4, rock),
        Piece("punk 180", _const(180), 4, {"kick": [0, 2], "snare": [1, 3], "hat": [0, 1, 2, 3]}),
        Piece(
            "accented 4/4 clicks 84",
            _const(84),
            4,
            {"accent": [0], "click": [1, 2, 3]},
        ),
    ]


def write_wav(path: Path, samples: FloatArray | Iterator[FloatArray]) -> None:
    """Write mono float samples (one array, or blocks) as 16-bit PCM WAV at `SR`."""
    blocks = [samples] if isinstance(samples, np.ndarray) else samples
    with av.open(str(path), mode="w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=SR)
        stream.codec_context.layout = "mono"
        stream.codec_context.format = "s16"
        written = 0
        for block in blocks:
            pcm = np.clip(np.round(block * 32767), -32768, 32767).astype(np.int16)
            for start in range(0, pcm.size, 1 << 16):
                part = pcm[start : start + (1 << 16)]
                frame = av.AudioFrame.from_ndarray(part.reshape(1, -1), format="s16", layout="mono")
                frame.sample_rate = SR
                frame.pts = written
                frame.time_base = Fraction(1, SR)
                out.mux(stream.encode(frame))
                written += part.size
        out.mux(stream.encode(None))


# --- evaluation ------------------------------------------------------------------------------------------------


def f_measure(reference: FloatArray, estimated: FloatArray, window: float = 0.07, skip: float = 5.0) -> float:
    """mir_eval's beat F-measure: one-to-one matches within ±`window`; beats before `skip` s are ignored."""
    reference = reference[reference >= skip]
    estimated = estimated[estimated >= skip]
    if reference.size == 0 or estimated.size == 0:
        return 0.0
    try:
        mir_eval: Any = importlib.import_module("mir_eval")
    except ImportError:
        pass
    else:
        return float(mir_eval.beat.f_measure(reference, estimated, window))
    # Greedy matching in time order is optimal here: beats are much further apart than 2 × window.
    matched, j = 0, 0
    for ref in reference:
        while j < estimated.size and estimated[j] < ref - window:
            j += 1
        if j < estimated.size and abs(estimated[j] - ref) <= window:
            matched += 1
            j += 1
    precision, recall = matched / estimated.size, matched / reference.size
    return 0.0 if matched == 0 else 2 * precision * recall / (precision + recall)


def true_tempo(beats: FloatArray) -> float:
    return 60.0 / float(np.median(np.diff(beats)))


def tempo_ok(estimate: float | None, truth: float) -> bool:
    return estimate is not None and abs(estimate - truth) <= 0.04 * truth


@dataclass
class Row:
    name: str
    duration: float
    truth_bpm: float
    ours: tuple[float, float | None, bool, float, int]  # F, tempo, within 4%, seconds, meter
    librosa: tuple[float, float | None, bool, float] | None


def run_ours(path: Path, truth: FloatArray) -> tuple[float, float | None, bool, float, int]:
    started = time.perf_counter()
    result = analyze_file(path, ALL_AUDIO, AnalysisParams())
    took = time.perf_counter() - started
    beats = result["audio"]["beats"]
    tempo = beats["tempo"]
    f = f_measure(truth, np.array(beats["beat_times"]))
    return f, tempo, tempo_ok(tempo, true_tempo(truth)), took, beats["meter"]


def load_librosa() -> Any | None:
    try:
        return importlib.import_module("librosa")
    except ImportError:
        return None


def run_librosa(librosa: Any, path: Path, truth: FloatArray) -> tuple[float, float | None, bool, float]:
    started = time.perf_counter()
    y, sr = librosa.load(str(path), sr=22_050, mono=True)
    tempo, frames = librosa.beat.beat_track(y=y, sr=sr)
    took = time.perf_counter() - started
    times = librosa.frames_to_time(frames, sr=sr)
    bpm = float(np.atleast_1d(tempo)[0])
    return f_measure(truth, np.asarray(times)), bpm, tempo_ok(bpm, true_tempo(truth)), took


# --- import time and long-input memory ---------------------------------------------------------------------------


def import_time() -> float:
    """Best of three wall times of a fresh ``python -c "import services.analyzer.features"``."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import services.analyzer.features"], check=True, cwd=ROOT)
        best = min(best, time.perf_counter() - started)
    return best


def _peak_rss_kib() -> int:
    # VmHWM belongs to this process image; ru_maxrss on Linux keeps the parent's peak across fork + exec.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _analyze_in_child(path: str) -> tuple[float, int, int]:
    """Runs in a fresh process: (seconds, peak RSS in KiB, number of beats)."""
    started = time.perf_counter()
    result = analyze_file(Path(path), ALL_AUDIO, AnalysisParams())
    took = time.perf_counter() - started
    return took, _peak_rss_kib(), len(result["audio"]["beats"]["beat_times"])


def long_input(tmp: Path, minutes: float) -> None:
    piece = Piece("long rock 124", _const(124), 4, {"kick": [0, 2], "snare": [1, 3], "hat": [x / 2 for x in range(8)]})
    block = piece.render()
    path = tmp / "long.wav"
    repeats = max(1, round(minutes * 60 / piece.duration))
    write_wav(path, (block for _ in range(repeats)))
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn) as pool:
        took, peak_kib, n_beats = pool.submit(_analyze_in_child, str(path)).result()
    seconds = repeats * piece.duration
    print(
        f"\n{seconds / 60:.0f}-minute input, all audio features in a fresh process: {took:.1f} s "
        f"({took / (seconds / 60):.3f} s per minute), peak RSS {peak_kib / 1024:.0f} MB, {n_beats} beats"
    )


# --- main ------------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--long-minutes", type=float, default=60.0, help="0 skips the long-input memory run")
    parser.add_argument("--no-librosa", action="store_true", help="skip librosa even when installed")
    args = parser.parse_args()
    librosa = None if args.no_librosa else load_librosa()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if librosa is not None:  # warm numba's JIT so librosa's timings are fair
            warm = tmp / "warm.wav"
            write_wav(warm, pieces()[1].render()[: 5 * SR])
            run_librosa(librosa, warm, np.arange(0, 5, 0.5))
        for piece in pieces():
            path = tmp / "piece.wav"
            write_wav(path, piece.render())
            truth = piece.truth()
            ours = run_ours(path, truth)
            theirs = run_librosa(librosa, path, truth) if librosa is not None else None
            rows.append(Row(piece.name, piece.duration, true_tempo(truth), ours, theirs))
            print_row(rows[-1], piece.meter)
        print_summary(rows)
        print(f"\nfresh `import services.analyzer.features`: {import_time():.2f} s")
        if args.long_minutes > 0:
            long_input(tmp, args.long_minutes)
    return 0


def _bpm(value: float | None) -> str:
    return "   -  " if value is None else f"{value:6.1f}"


HEADER = (
    f"{'piece':28} {'true':>6} | {'F':>5} {'tempo':>6} {'4%':>3} {'meter':>5} {'s/min':>6}"
    f" | {'F lib':>5} {'tempo':>6} {'4%':>3} {'s/min':>6}"
)


def print_row(row: Row, meter: int) -> None:
    if not hasattr(print_row, "header"):
        print(HEADER)
        print("-" * len(HEADER))
        print_row.header = True  # type: ignore[attr-defined]
    f, tempo, ok, took, our_meter = row.ours
    meter_text = f"{our_meter}/{meter}"
    line = (
        f"{row.name:28} {row.truth_bpm:6.1f} | {f:5.3f} {_bpm(tempo)} {'yes' if ok else ' no':>3}"
        f" {meter_text:>5} {took / (row.duration / 60):6.3f}"
    )
    if row.librosa is not None:
        lf, ltempo, lok, ltook = row.librosa
        line += f" | {lf:5.3f} {_bpm(ltempo)} {'yes' if lok else ' no':>3} {ltook / (row.duration / 60):6.3f}"
    print(line, flush=True)


def print_summary(rows: list[Row]) -> None:
    n = len(rows)
    f = np.mean([r.ours[0] for r in rows])
    ok = sum(r.ours[2] for r in rows)
    per_min = sum(r.ours[3] for r in rows) / sum(r.duration / 60 for r in rows)
    print("-" * len(HEADER))
    line = f"{'mean (' + str(n) + ' pieces)':28} {'':6} | {f:5.3f} {'':6} {ok:>3} {'':5} {per_min:6.3f}"
    lib = [r.librosa for r in rows if r.librosa is not None]
    if lib:
        lper_min = sum(x[3] for x in lib) / sum(r.duration / 60 for r in rows)
        line += f" | {np.mean([x[0] for x in lib]):5.3f} {'':6} {sum(x[2] for x in lib):>3} {lper_min:6.3f}"
    print(line)
    print(f"\nours: mean F {f:.3f}, tempo within 4% on {ok}/{n} ({100 * ok / n:.0f}%), {per_min:.3f} s per minute")
    if lib:
        print(
            f"librosa beat_track: mean F {np.mean([x[0] for x in lib]):.3f}, tempo within 4% on "
            f"{sum(x[2] for x in lib)}/{n}, {lper_min:.3f} s per minute (incl. loading)"
        )


if __name__ == "__main__":
    sys.exit(main())
