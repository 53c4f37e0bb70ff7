"""Tempo, beats, downbeats and meter from an onset-strength envelope.

1. A tempogram: autocorrelation of the envelope in 8 s windows every second,
   read on a log-spaced BPM grid, each lag reinforced by its double (so the beat
   level beats its subdivisions) and weighted by a log-normal prior around 120 BPM.
2. A Viterbi path through the tempogram gives the local tempo; jumps cost in
   proportion to their size in octaves, so steps and ramps are followed but
   octave flips need lasting evidence.
3. Ellis (2007) dynamic programming places beats on strong onsets spaced close to
   the local period (the period varies per frame), vectorised in blocks of half
   the shortest period.
4. Beats are refined to the nearest onset peak (sub-frame), weak beats at either
   end are trimmed, and the accent pattern (low-band and full-band onset
   strength per beat) picks the meter (3 or 4) and the downbeat phase.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from services.analyzer.features.onsets import LATENCY_S, parabolic_peak

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_WINDOW_S = 8.0
_WINDOW_HOP_S = 1.0
_PRIOR_BPM = 120.0
_PRIOR_OCTAVES = 1.0
_JUMP_COST = 1.0  # Viterbi cost of a tempo change of one octave between windows
_TIGHTNESS = 100.0  # Ellis' λ: how strongly beat spacing sticks to the local period
_GRID_PER_OCTAVE = 48
_HALF_PENALTY = 0.5
_MIN_ACCENT = 0.1  # a meter needs its downbeats at least 10% stronger than the other beats


@dataclass(frozen=True)
class BeatResult:
    """Everything the beats feature reports."""

    tempo: float | None
    beat_times: FloatArray
    confidence: float
    downbeat_times: FloatArray
    meter: int
    curve_times: FloatArray
    curve_bpm: FloatArray
    candidates: tuple[tuple[float, float], ...] = ()  # (bpm, confidence), best first

    def to_json(self) -> dict[str, Any]:
        return {
            "tempo": None if self.tempo is None else round(self.tempo, 2),
            "beat_times": _rounded(self.beat_times, 4),
            "confidence": round(self.confidence, 3),
            "downbeat_times": _rounded(self.downbeat_times, 4),
            "meter": self.meter,
            "tempo_curve": {"times": _rounded(self.curve_times, 3), "bpm": _rounded(self.curve_bpm, 2)},
            "tempo_candidates": [{"bpm": round(b, 2), "confidence": round(c, 3)} for b, c in self.candidates],
        }


def _rounded(values: FloatArray, digits: int) -> list[float]:
    return [float(v) for v in np.round(values, digits)]


def _smooth(x: FloatArray, radius: int) -> FloatArray:
    if radius <= 0 or x.size == 0:
        return x
    kernel = np.hanning(2 * radius + 3)[1:-1]
    kernel /= kernel.sum()
    return np.convolve(x, kernel, mode="same")


def _moving_mean(x: FloatArray, length: int) -> FloatArray:
    if x.size == 0:
        return x
    length = max(1, min(length, x.size))
    csum = np.concatenate([[0.0], np.cumsum(x)])
    half = length // 2
    idx = np.arange(x.size)
    lo = np.clip(idx - half, 0, x.size)
    hi = np.clip(idx - half + length, 0, x.size)
    mean: FloatArray = (csum[hi] - csum[lo]) / np.maximum(hi - lo, 1)
    return mean


def tempogram(onset: FloatArray, fps: float, bpm_grid: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Windowed autocorrelation read at the lags of `bpm_grid` (and their doubles): (window times, scores)."""
    win = round(_WINDOW_S * fps)
    hop = max(1, round(_WINDOW_HOP_S * fps))
    lags = fps * 60.0 / bpm_grid
    max_lag = int(np.ceil(2 * lags.max())) + 2
    padded = onset
    if padded.size < win:
        padded = np.concatenate([padded, np.zeros(win - padded.size)])
    starts = np.arange(0, padded.size - win + 1, hop)
    if starts[-1] + win < padded.size:
        starts = np.append(starts, padded.size - win)
    taper = np.hanning(win)
    n_fft = 1 << int(np.ceil(np.log2(win + max_lag)))
    rows: list[FloatArray] = []
    for chunk in range(0, starts.size, 128):
        idx = starts[chunk : chunk + 128, None] + np.arange(win)[None, :]
        seg = padded[idx]
        seg = (seg - seg.mean(axis=1, keepdims=True)) * taper
        spec = np.fft.rfft(seg, n=n_fft, axis=1)
        ac = np.fft.irfft(np.abs(spec) ** 2, n=n_fft, axis=1)[:, : max_lag + 1]
        ac /= np.maximum(ac[:, :1], 1e-12)
        # Reward the double of the period (the bar level agrees) and penalise strong onsets half-way
        # between beats (then the true beat is twice as fast).
        rows.append(_read_lags(ac, lags) + 0.5 * _read_lags(ac, 2 * lags) - _HALF_PENALTY * _read_lags(ac, lags / 2))
    scores: FloatArray = np.maximum(np.vstack(rows), 0.0).astype(np.float64)
    times: FloatArray = ((starts + win / 2) / fps).astype(np.float64)
    return times, scores


def _read_lags(ac: FloatArray, lags: FloatArray) -> FloatArray:
    lo = np.floor(lags).astype(np.int64)
    frac = lags - lo
    return ac[:, lo] * (1 - frac) + ac[:, lo + 1] * frac


def _viterbi(scores: FloatArray, log_bpm: FloatArray) -> IntArray:
    """Best path of grid indices: sum of normalised scores minus the cost of tempo changes."""
    emission = scores / np.maximum(scores.max(axis=1, keepdims=True), 1e-12)
    jump = _JUMP_COST * np.abs(log_bpm[:, None] - log_bpm[None, :])
    total = emission[0].copy()
    back = np.zeros(scores.shape, dtype=np.int64)
    for i in range(1, len(scores)):
        options = total[None, :] - jump  # [to, from]
        back[i] = options.argmax(axis=1)
        total = options[np.arange(len(total)), back[i]] + emission[i]
    path = np.zeros(len(scores), dtype=np.int64)
    path[-1] = int(total.argmax())
    for i in range(len(scores) - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    return path


def _dp_beats(local: FloatArray, period: FloatArray) -> IntArray:
    """Ellis' dynamic programme with a per-frame period, computed in blocks of independent frames."""
    n = local.size
    score = np.zeros(n)
    back = np.full(n, -1, dtype=np.int64)
    block = max(1, int(np.floor(period.min() / 2)))
    d_lo = max(1, int(np.floor(period.min() / 2)))
    d_hi = int(np.ceil(period.max() * 2))
    offsets = np.arange(d_lo, d_hi + 1)
    for start in range(0, n, block):
        frames = np.arange(start, min(n, start + block))
        tau = period[frames][:, None]
        prev = frames[:, None] - offsets[None, :]
        ratio = offsets[None, :] / tau
        valid = (prev >= 0) & (ratio >= 0.5) & (ratio <= 2.0)
        cand = np.where(valid, score[np.maximum(prev, 0)] - _TIGHTNESS * np.log(ratio) ** 2, -np.inf)
        best = cand.argmax(axis=1)
        best_val = cand[np.arange(frames.size), best]
        chained = best_val > 0
        score[frames] = local[frames] + np.where(chained, best_val, 0.0)
        back[frames] = np.where(chained, prev[np.arange(frames.size), best], -1)
    # End on the last local maximum of the cumulative score that is not weak.
    peaks = np.flatnonzero((score[1:-1] >= score[:-2]) & (score[1:-1] >= score[2:])) + 1
    if peaks.size == 0:
        return np.zeros(0, dtype=np.int64)
    strong = peaks[score[peaks] >= 0.5 * np.median(score[peaks])]
    beat = int(strong[-1])
    beats = [beat]
    while back[beat] >= 0:
        beat = int(back[beat])
        beats.append(beat)
    return np.array(beats[::-1], dtype=np.int64)


def _refine(onset: FloatArray, beats: IntArray, radius: int) -> FloatArray:
    """Move each beat to the onset peak within `radius` frames, with sub-frame interpolation."""
    out = beats.astype(np.float64)
    for i, b in enumerate(beats):
        lo, hi = max(0, b - radius), min(onset.size, b + radius + 1)
        k = lo + int(np.argmax(onset[lo:hi]))
        if onset[k] > 0:
            out[i] = parabolic_peak(onset, k)
    return out


def _meter(accent: FloatArray) -> tuple[int, int, float]:
    """(meter, phase of the first downbeat, contrast) from per-beat accents."""
    best = (4, 0, _MIN_ACCENT)
    for meter in (4, 3):
        if accent.size < 2 * meter:
            continue
        for phase in range(meter):
            on = accent[phase::meter]
            mask = np.ones(accent.size, dtype=bool)
            mask[phase::meter] = False
            contrast = float(on.mean() - accent[mask].mean())
            # 3 must win clearly: a 4/4 pattern read in threes only smears its accents.
            margin = 1.15 if meter == 3 else 1.0
            if contrast > best[2] * margin:
                best = (meter, phase, contrast)
    return best


def track_beats(
    strength: FloatArray, low: FloatArray, fps: float, min_bpm: float, max_bpm: float, hint: float | None = None
) -> BeatResult:
    """Beats, tempo, downbeats, meter and tempo curve of an onset envelope sampled at `fps`."""
    empty = np.zeros(0)
    nothing = BeatResult(None, empty, 0.0, empty, 4, empty, empty)
    if strength.size < fps * 2 or not np.any(strength > 0):
        return nothing
    std = strength.std()
    onset = strength / std if std > 0 else strength
    centred = np.maximum(onset - _moving_mean(onset, round(fps)), 0.0)

    octaves = np.log2(max_bpm / min_bpm)
    log_bpm = np.log2(min_bpm) + np.arange(int(octaves * _GRID_PER_OCTAVE) + 1) / _GRID_PER_OCTAVE
    bpm_grid = 2.0**log_bpm
    times, scores = tempogram(centred, fps, bpm_grid)
    prior = np.exp(-0.5 * ((log_bpm - np.log2(_PRIOR_BPM)) / _PRIOR_OCTAVES) ** 2)
    weighted = scores * prior[None, :]
    path = _viterbi(weighted, log_bpm)
    path_bpm = bpm_grid[path]
    frames = np.arange(onset.size)
    period = fps * 60.0 / np.interp(frames / fps, times, path_bpm)

    local = _smooth(onset, 1)
    beats = _dp_beats(local - local.mean() * 0.0, period)
    if beats.size < 2:
        return nothing

    # Trim weak beats at the ends (an intro without a pulse, a fade-out).
    smoothed = _smooth(onset, 3)
    at_beats = smoothed[beats]
    threshold = 0.5 * np.sqrt(np.mean(at_beats**2))
    strong = np.flatnonzero(at_beats >= threshold)
    beats = beats[strong[0] : strong[-1] + 1]
    if beats.size < 2:
        return nothing

    refined = _refine(onset, beats, radius=2)
    beat_times = refined / fps + LATENCY_S
    intervals = np.diff(beat_times)
    tempo = 60.0 / float(np.median(intervals))

    window = min(5, intervals.size)
    padded = np.pad(intervals, (window // 2, window - 1 - window // 2), mode="edge")
    local_ibi = np.median(np.lib.stride_tricks.sliding_window_view(padded, window), axis=1)
    curve_times = (beat_times[1:] + beat_times[:-1]) / 2
    curve_bpm = 60.0 / local_ibi

    def near(env: FloatArray) -> FloatArray:
        # Summed over ±2 frames: the flux of one onset splits between frames depending on its phase.
        idx = np.clip(beats[:, None] + np.arange(-2, 3)[None, :], 0, env.size - 1)
        summed: FloatArray = env[idx].sum(axis=1)
        return summed

    def relative(values: FloatArray) -> FloatArray:
        mean = values.mean()
        return values / mean - 1.0 if mean > 0 else np.zeros_like(values)

    accent = relative(near(low)) + relative(near(onset))
    meter, phase, _ = _meter(accent)
    downbeats = beat_times[phase::meter]

    hits = near(onset) / 5 > np.mean(onset) + np.std(onset)
    periodicity = float(np.clip(np.mean(scores[np.arange(len(path)), path]) / 1.5, 0.0, 1.0))
    confidence = float(np.clip(0.5 * hits.mean() + 0.5 * periodicity, 0.0, 1.0))
    return BeatResult(tempo, beat_times, confidence, downbeats, meter, curve_times, curve_bpm)
