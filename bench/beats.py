"""Beat-tracking benchmark: artdag's tracker beside librosa and essentia, on a corpus of real instruments.

The corpus (bench/beat_corpus.py) is 72 pieces composed as MIDI and rendered with FluidSynth:
rock, house, techno, disco, funk, Motown, shuffle and swing, half-time, trap and dubstep,
waltzes, ballads, punk, thrash and metal, ska, reggae, breakbeat, 2-step and jungle, bossa
nova, samba, salsa, cha-cha, afrobeat, country and bluegrass, marches and polkas, drum and
bass, hip-hop and lo-fi, R&B and neo-soul, synth-pop and new wave, solo piano, ragtime,
fingerpicked guitar, strings, 6/8, 12/8 and 5/4, tempo steps, an accelerando and a
ritardando, tempo drift, humanised timing, a fade-in, a drumless intro, a double-time
section and a break; the truth is the MIDI's beat grid. Pieces come in pairs of similar ones split into a `tune`
half (for tuning a tracker) and a `report` half (the default here).

For each piece and tracker it prints the F-measure (mir_eval's beat.f_measure: ±70 ms, beats
before 5 s ignored), the estimated tempo, whether that tempo is right (within 4% of the truth's
median tempo) and right up to a factor of 2 (within 4% of ×1, ×2 or ×½), and the seconds of
analysis per minute of audio, decoding included (with ``--repeat N`` the fastest of N runs:
this machine's timings vary by a third from run to run). Then a summary per tracker and split, the
time of a fresh ``import services.analyzer.features`` and the peak RSS of analysing a long
input (a corpus piece repeated) with every audio feature.

    .venv/bin/python bench/beats.py [--split report|tune|all] [--format wav|mp3|ogg|m4a|mixed]
        [--only NAME] [--no-librosa] [--no-essentia] [--long-minutes 60] [--json FILE] [--repeat N]

librosa (``beat.beat_track`` at 22.05 kHz), essentia (``RhythmExtractor2013``, multifeature,
on ``MonoLoader``'s 44.1 kHz mono) and mir_eval come from the optional ``bench`` extra; without
them the script still runs (its own F-measure, their columns left out).
"""

from __future__ import annotations

import argparse
import importlib
import json
import multiprocessing
import resource
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from bench.beat_corpus import FORMATS, CorpusPiece, build_corpus
from services.analyzer.features import AnalysisParams, analyze_file

ROOT = Path(__file__).resolve().parents[1]
FloatArray = npt.NDArray[np.float64]
ALL_AUDIO = ["beats", "energy", "spectrum", "onsets"]
WINDOW = 0.07  # F-measure tolerance, seconds
SKIP = 5.0  # beats before this are ignored, as mir_eval does
TOLERANCE = 0.04  # a tempo within 4% is right
LONG_PIECE = "rock-128"


# --- trackers --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    beats: FloatArray
    tempo: float | None
    seconds: float  # wall time, decoding included


Tracker = Callable[[Path], Estimate]


def track_artdag(path: Path) -> Estimate:
    started = time.perf_counter()
    beats = analyze_file(path, ["beats"], AnalysisParams())["audio"]["beats"]
    took = time.perf_counter() - started
    tempo = beats["tempo"]
    return Estimate(np.asarray(beats["beat_times"], dtype=np.float64), None if tempo is None else float(tempo), took)


def librosa_tracker(librosa: Any) -> Tracker:
    def track(path: Path) -> Estimate:
        started = time.perf_counter()
        if path.suffix == ".m4a":  # soundfile cannot read AAC, and librosa's audioread fallback is deprecated
            y = decode_mono(path, 22_050)
        else:
            y, _ = librosa.load(str(path), sr=22_050, mono=True)
        tempo, beats = librosa.beat.beat_track(y=y, sr=22_050, units="time")
        took = time.perf_counter() - started
        return Estimate(np.asarray(beats, dtype=np.float64), float(np.atleast_1d(tempo)[0]), took)

    return track


def essentia_tracker(standard: Any) -> Tracker:
    def track(path: Path) -> Estimate:
        started = time.perf_counter()
        audio = standard.MonoLoader(filename=str(path), sampleRate=44_100)()
        bpm, beats, *_ = standard.RhythmExtractor2013(method="multifeature")(audio)
        took = time.perf_counter() - started
        return Estimate(np.asarray(beats, dtype=np.float64), float(bpm), took)

    return track


def decode_mono(path: Path, rate: int) -> npt.NDArray[np.float32]:
    """The whole file as mono float samples at `rate`, decoded by PyAV."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    blocks = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            blocks += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    blocks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(blocks)


def optional_module(name: str) -> Any | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def trackers(use_librosa: bool, use_essentia: bool) -> dict[str, Tracker]:
    """artdag, and whichever of librosa and essentia are wanted and installed."""
    found: dict[str, Tracker] = {"artdag": track_artdag}
    librosa = optional_module("librosa") if use_librosa else None
    if librosa is not None:
        found["librosa"] = librosa_tracker(librosa)
    essentia = optional_module("essentia.standard") if use_essentia else None
    if essentia is not None:
        found["essentia"] = essentia_tracker(essentia)
    for name, wanted in (("librosa", use_librosa), ("essentia", use_essentia)):
        if wanted and name not in found:
            print(f"({name} is not installed: its columns are left out; pip install '.[bench]')")
    return found


# --- scoring ---------------------------------------------------------------------------------------------------


def f_measure(reference: FloatArray, estimated: FloatArray) -> float:
    """mir_eval's beat F-measure: one-to-one matches within ±70 ms; beats before 5 s are ignored."""
    mir_eval = optional_module("mir_eval")
    if mir_eval is not None:
        reference = mir_eval.beat.trim_beats(reference, SKIP)
        estimated = mir_eval.beat.trim_beats(estimated, SKIP)
        if reference.size == 0 or estimated.size == 0:
            return 0.0
        return float(mir_eval.beat.f_measure(reference, estimated, WINDOW))
    reference, estimated = reference[reference >= SKIP], estimated[estimated >= SKIP]
    if reference.size == 0 or estimated.size == 0:
        return 0.0
    # Greedy matching in time order is optimal here: beats are much further apart than 2 × window.
    matched, j = 0, 0
    for ref in reference:
        while j < estimated.size and estimated[j] < ref - WINDOW:
            j += 1
        if j < estimated.size and abs(estimated[j] - ref) <= WINDOW:
            matched += 1
            j += 1
    precision, recall = matched / estimated.size, matched / reference.size
    return 0.0 if matched == 0 else 2 * precision * recall / (precision + recall)


def tempo_right(estimate: float | None, truth: float, factors: tuple[float, ...] = (1.0,)) -> bool:
    return estimate is not None and any(abs(estimate - k * truth) <= TOLERANCE * k * truth for k in factors)


@dataclass(frozen=True)
class Result:
    f: float
    tempo: float | None
    tempo_right: bool
    tempo_right_x2: bool  # right at ×1, ×2 or ×½
    seconds: float


def evaluate(tracker: Tracker, piece: CorpusPiece, fmt: str, repeat: int = 1) -> Result:
    """One tracker on one piece; with `repeat`, the fastest of that many runs (all give the same beats)."""
    estimate = tracker(piece.path(fmt))
    for _ in range(repeat - 1):
        again = tracker(piece.path(fmt))
        if again.seconds < estimate.seconds:
            estimate = again
    return Result(
        f=f_measure(piece.beats, estimate.beats),
        tempo=estimate.tempo,
        tempo_right=tempo_right(estimate.tempo, piece.tempo),
        tempo_right_x2=tempo_right(estimate.tempo, piece.tempo, (1.0, 2.0, 0.5)),
        seconds=estimate.seconds,
    )


@dataclass(frozen=True)
class Row:
    piece: CorpusPiece
    fmt: str
    results: dict[str, Result]

    def as_json(self) -> dict[str, Any]:
        p = self.piece
        return {
            "name": p.name,
            "style": p.style,
            "split": p.split,
            "format": self.fmt,
            "truth_bpm": round(p.tempo, 3),
            "time_signature": p.time_signature,
            "duration": round(p.duration, 3),
            "trackers": {name: asdict(result) for name, result in self.results.items()},
        }


# --- printing --------------------------------------------------------------------------------------------------

NAME_WIDTH = 19
TRACKER_COLUMNS = f"{'F':>5} {'tempo':>6} {'4%':>3} {'×2':>3} {'s/min':>5}"


def print_header(names: list[str]) -> None:
    lead = " " * (NAME_WIDTH + 19)
    print(lead + "".join(f" | {name:<{len(TRACKER_COLUMNS)}}" for name in names))
    columns = f"{'piece':{NAME_WIDTH}} {'split':6} {'fmt':4} {'truth':>6}"
    print(columns + f" | {TRACKER_COLUMNS}" * len(names))
    print("-" * (len(columns) + (len(TRACKER_COLUMNS) + 3) * len(names)))


def print_row(row: Row) -> None:
    def yes(flag: bool) -> str:
        return "yes" if flag else " no"

    line = f"{row.piece.name:{NAME_WIDTH}} {row.piece.split:6} {row.fmt:4} {row.piece.tempo:6.1f}"
    for result in row.results.values():
        tempo = "     -" if result.tempo is None else f"{result.tempo:6.1f}"
        per_minute = result.seconds / (row.piece.duration / 60)
        line += f" | {result.f:5.3f} {tempo} {yes(result.tempo_right)} {yes(result.tempo_right_x2)} {per_minute:5.3f}"
    print(line, flush=True)


def print_summary(rows: list[Row], names: list[str]) -> None:
    groups = {split: [r for r in rows if r.piece.split == split] for split in ("tune", "report")}
    groups = {split: group for split, group in groups.items() if group}
    if len(groups) > 1:
        groups["all"] = rows
    print(f"\n{'tracker':9} {'split':6} {'pieces':>6} {'mean F':>6} {'tempo right':>12} {'up to ×2':>12} {'s/min':>6}")
    for name in names:
        for split, group in groups.items():
            results = [r.results[name] for r in group]
            right = _share(sum(r.tempo_right for r in results), len(results))
            right_x2 = _share(sum(r.tempo_right_x2 for r in results), len(results))
            per_minute = sum(r.seconds for r in results) / sum(r.piece.duration / 60 for r in group)
            mean_f = np.mean([r.f for r in results])
            print(f"{name:9} {split:6} {len(results):6} {mean_f:6.3f} {right:>12} {right_x2:>12} {per_minute:6.3f}")


def _share(k: int, n: int) -> str:
    return f"{k}/{n} ({100 * k / n:.0f}%)"


# --- import time and long-input memory -------------------------------------------------------------------------


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


def long_input(piece: CorpusPiece, minutes: float) -> None:
    """Analyse `piece` repeated to about `minutes` long (mono WAV) in a fresh process: time and peak RSS."""
    with wave.open(str(piece.path("wav")), "rb") as src:
        rate, channels = src.getframerate(), src.getnchannels()
        pcm = np.frombuffer(src.readframes(src.getnframes()), dtype="<i2").reshape(-1, channels)
    mono = pcm.mean(axis=1).round().astype("<i2").tobytes()
    repeats = max(1, round(minutes * 60 / piece.duration))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.wav"
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(rate)
            for _ in range(repeats):
                out.writeframes(mono)
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=spawn) as pool:
            took, peak_kib, n_beats = pool.submit(_analyze_in_child, str(path)).result()
    seconds = repeats * piece.duration
    print(
        f"{seconds / 60:.0f}-minute input ({piece.name} × {repeats}), all audio features in a fresh process: "
        f"{took:.1f} s ({took / (seconds / 60):.3f} s per minute), peak RSS {peak_kib / 1024:.0f} MB, {n_beats} beats"
    )


# --- main ------------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--split", choices=["tune", "report", "all"], default="report")
    parser.add_argument("--format", choices=[*FORMATS, "mixed"], default="wav", help="mixed: rotate across pieces")
    parser.add_argument("--only", metavar="NAME", help="pieces whose name contains NAME")
    parser.add_argument("--no-librosa", action="store_true", help="skip librosa even when installed")
    parser.add_argument("--no-essentia", action="store_true", help="skip essentia even when installed")
    parser.add_argument("--long-minutes", type=float, default=60.0, help="0 skips the long-input memory run")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the per-piece rows as JSON")
    parser.add_argument(
        "--repeat", type=int, default=1, metavar="N", help="time each tracker on each piece N times, keep the fastest"
    )
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat: at least 1")

    used = FORMATS if args.format == "mixed" else (args.format,)
    corpus = build_corpus(formats=sorted({"wav", *used}))
    rotation = {p.name: FORMATS[i % len(FORMATS)] for i, p in enumerate(corpus)}  # fixed per piece
    pieces = [p for p in corpus if args.split in ("all", p.split) and (args.only is None or args.only in p.name)]
    if not pieces:
        print("no piece matches", file=sys.stderr)
        return 2
    chosen = trackers(not args.no_librosa, not args.no_essentia)
    for tracker in chosen.values():  # warm caches and numba's JIT so the timings are fair
        tracker(pieces[0].path("wav"))

    print(f"corpus: {pieces[0].directory} (synth latency {1000 * pieces[0].latency:.1f} ms in the truth)\n")
    print_header(list(chosen))
    rows = []
    for piece in pieces:
        fmt = rotation[piece.name] if args.format == "mixed" else args.format
        results = {name: evaluate(tracker, piece, fmt, args.repeat) for name, tracker in chosen.items()}
        rows.append(Row(piece, fmt, results))
        print_row(rows[-1])
    print_summary(rows, list(chosen))
    if args.json:
        args.json.write_text(json.dumps([row.as_json() for row in rows], indent=1))
        print(f"\nper-piece rows written to {args.json}")

    print(f"\nfresh `import services.analyzer.features`: {import_time():.2f} s")
    if args.long_minutes > 0:
        long_input(next(p for p in corpus if p.name == LONG_PIECE), args.long_minutes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
