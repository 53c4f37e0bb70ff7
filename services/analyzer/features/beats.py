"""Tempo, beats, downbeats and meter from onset-strength envelopes in three registers.

A listener taps one metrical level — neither the hi-hat's eighths nor the bar — and
the periodicity of an onset envelope alone does not say which: a half-time groove is
as periodic at half its tempo, four-on-the-floor with off-beat hats at every
subdivision. So the tracker finds the pulse first and decides the level afterwards,
from what beats at each level sound like:

1. **Pulse.** An envelope that weighs kick and snare over hats, and a tempogram
   of it: autocorrelation in 8 s windows every second, read on a log BPM grid,
   each lag reinforced by its double and triple (comb filtering, so a period
   whose multiples also recur wins over noise). A Viterbi path through it gives a
   reference tempo that may change (steps, accelerandos); big leaps cost more
   than ramps, so a level does not flip midway.
2. **Levels.** The reference tempo times 1/3, 1/2, 2/3, 3/4, 1, 4/3, 3/2, 2 and 3
   are the candidate levels. For each, Ellis' (2007) dynamic programme places
   beats on strong onsets spaced close to that level's local period, and the
   beats move to the phase (0, ¼, ½, ¾ of a beat) where snare and hats are strongest.
3. **Choice.** Each level is scored by a weighted sum of what its beats sound like
   (`level_features`): a tempo prior (around 115 BPM, or a narrow one around a
   `tempo_hint`), onset salience on the beats, drums half-, a third- and a
   quarter-way between them, how even every second and third beat is, and
   whether kick and snare take turns, and how strongly the tempogram recurs at
   the level's rate. The weights are a conditional logit (a softmax over each
   piece's levels) fitted on the `tune` half of bench/beat_corpus.py and its
   variants 10% slower and faster, never on the report half (bench/tune_beats.py).
   The best three levels become `tempo_candidates`, with softmax confidences.
4. The chosen level's beats are refined to the nearest onset peak (sub-frame),
   weak beats at either end are trimmed, the tempo curve is the median slope over
   the pairs of the six beats around each interval (a step shows within two
   beats), the tempo its median, and the accent pattern (kick register and full
   onsets per beat) picks the meter (3 or 4) and the downbeat phase.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from services.analyzer.features.onsets import LATENCY_S, parabolic_peak
from services.analyzer.features.spectral import OnsetBands, rfft_rows

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_WINDOW_S = 8.0
_WINDOW_HOP_S = 1.0
_GRID_PER_OCTAVE = 48
_JUMP_COST = 1.0  # Viterbi cost of a tempo change of one octave between windows
_LEAP_COST = 4.0  # …plus this times the change squared
_CURVE_REACH = 2  # the tempo curve at an interval looks this many beats either side
_TIGHTNESS = 100.0  # Ellis' λ: how strongly beat spacing sticks to the local period
_MIN_SPACING, _MAX_SPACING = 0.75, 1.34  # beat spacings the dynamic programme considers, in periods
_RIVAL = 0.75  # onsets between beats at this fraction of those on them start to say the level is too slow
_DP_CHUNK_FRAMES = 4096
_MIN_ACCENT = 0.1  # a meter needs its downbeats at least 10% stronger than the other beats
_LEVELS = (1 / 3, 1 / 2, 2 / 3, 3 / 4, 1.0, 4 / 3, 3 / 2, 2.0, 3.0)
_HAT_WEIGHT = 0.5

# Level scoring (see `_level_score`); fitted on the corpus' tune half and its variants (bench/tune_beats.py).
_PRIOR_BPM = 115.0
_PRIOR_OCTAVES = 0.6
_HINT_OCTAVES = 0.15
_WEIGHTS = {
    "prior": 2.686,
    "octave": 1.573,
    "salience": 5.614,
    "between_half": 0.077,
    "between_third": -3.73,
    "between_quarter": -0.282,
    "evenness_2": 0.328,
    "evenness_3": 0.484,
    "backbeat_1": 3.473,
    "backbeat_2": -3.714,
    "between_half_excess": 4.889,
    "backbeat_even": 0.514,
    "support": 0.941,
}


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


@dataclass(frozen=True)
class LevelSearch:
    """What `track_levels` found: the candidate levels and the envelopes and tempo they came from."""

    levels: list[Level]
    pulse: FloatArray
    registers: tuple[FloatArray, FloatArray, FloatArray]  # low, mid, high, rectified
    reference: FloatArray  # BPM per frame of the level the tempogram's path follows


@dataclass(frozen=True)
class Level:
    """Beats tracked at one metrical level, and what they sound like."""

    factor: float
    beats: IntArray  # frames
    bpm: float
    features: dict[str, float]


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


def _registers(bands: OnsetBands) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Each register scaled to unit spread, so a quiet kick counts as much as loud hats; silent ones stay small."""
    registers = (bands.low, bands.mid, bands.high)
    spreads = [float(r.std()) for r in registers]
    floor = 0.25 * max(spreads)
    low, mid, high = (r / max(s, floor) for r, s in zip(registers, spreads, strict=True))
    return low, mid, high


def _rectified(x: FloatArray, fps: float) -> FloatArray:
    """`x` above its one-second moving mean: onsets stand out of sustained noise."""
    return np.maximum(x - _moving_mean(x, round(fps)), 0.0)


def tempogram(pulse: FloatArray, fps: float, bpm_grid: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Windowed autocorrelation read at the lags of `bpm_grid` and their multiples: (window times, scores)."""
    win = round(_WINDOW_S * fps)
    hop = max(1, round(_WINDOW_HOP_S * fps))
    lags = fps * 60.0 / bpm_grid
    max_lag = int(np.ceil(3 * lags.max())) + 2
    padded = pulse
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
        spec = rfft_rows(np.pad(seg, ((0, 0), (0, n_fft - win))))
        ac = np.fft.irfft(np.abs(spec) ** 2, n=n_fft, axis=1)[:, : max_lag + 1]
        ac /= np.maximum(ac[:, :1], 1e-12)
        comb = _read_lags(ac, lags) + 0.5 * _read_lags(ac, 2 * lags) + 0.33 * _read_lags(ac, 3 * lags)
        rows.append(comb)
    scores: FloatArray = np.maximum(np.vstack(rows), 0.0).astype(np.float64)
    times: FloatArray = ((starts + win / 2) / fps).astype(np.float64)
    return times, scores


def _read_lags(ac: FloatArray, lags: FloatArray) -> FloatArray:
    lo = np.minimum(np.floor(lags).astype(np.int64), ac.shape[1] - 2)
    frac = lags - lo
    read: FloatArray = ac[:, lo] * (1 - frac) + ac[:, lo + 1] * frac
    return read


def _viterbi(scores: FloatArray, log_bpm: FloatArray) -> IntArray:
    """Best path of grid indices: sum of normalised scores minus the cost of tempo changes."""
    emission = scores / np.maximum(scores.max(axis=1, keepdims=True), 1e-12)
    octaves = np.abs(log_bpm[:, None] - log_bpm[None, :])
    # Linear in small changes (a ramp costs what a step of the same size does) but steep for big leaps:
    # a tempo that doubles between two windows is far likelier a change of level than of tempo.
    jump = _JUMP_COST * (octaves + _LEAP_COST * octaves**2)
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
    # Spacings beyond ±1/3 of the period cost more than any onset can pay back, so they are not searched.
    d_lo = max(1, int(np.floor(period.min() * _MIN_SPACING)))
    d_hi = int(np.ceil(period.max() * _MAX_SPACING))
    block = d_lo  # frames closer together than the shortest spacing cannot depend on each other
    offsets = np.arange(d_lo, d_hi + 1)
    # Frame f's score is padded[f + d_hi]; the zeros before frame 0 are never chosen (their cost is -inf).
    padded = np.zeros(n + d_hi)
    score = padded[d_hi:]
    back = np.full(n, -1, dtype=np.int64)
    frame_numbers = np.arange(n)
    log_offsets, log_period = np.log(offsets), np.log(period)
    log_min, log_max = np.log(_MIN_SPACING), np.log(_MAX_SPACING)
    # windows[f, m] = score of frame f - offsets[-1 - m]: each block's predecessors as a view, not a copy.
    windows = np.lib.stride_tricks.sliding_window_view(padded, offsets.size)[:, ::-1]
    # Spacing costs are computed for a chunk of frames at once (memory stays bounded for hours of
    # audio); the loop over blocks keeps only what depends on earlier scores.
    chunk = block * max(1, _DP_CHUNK_FRAMES // block)
    for chunk_start in range(0, n, chunk):
        chunk_stop = min(n, chunk_start + chunk)
        frames = frame_numbers[chunk_start:chunk_stop, None]
        # A spacing is judged by the period halfway through it: across a step of tempo, the last
        # interval before the step keeps the old period and the first after it takes the new one.
        log_ratio = log_offsets[None, :] - log_period[np.maximum(frames - offsets[None, :] // 2, 0)]
        cost_chunk = -_TIGHTNESS * np.square(log_ratio)
        cost_chunk[(log_ratio < log_min) | (log_ratio > log_max) | (frames < offsets[None, :])] = -np.inf
        for start in range(chunk_start, chunk_stop, block):
            stop = min(chunk_stop, start + block)
            cand = windows[start:stop] + cost_chunk[start - chunk_start : stop - chunk_start]
            best = cand.argmax(axis=1)
            best_val = cand.max(axis=1)
            np.maximum(best_val, 0.0, out=best_val)  # a chain worth less than nothing starts afresh
            np.add(local[start:stop], best_val, out=score[start:stop])
            back[start:stop] = np.where(best_val > 0, frame_numbers[start:stop] - offsets[best], -1)
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


def _near(env: FloatArray, positions: FloatArray, radius: int = 2) -> FloatArray:
    """The strongest value of `env` within ±`radius` frames of each position (played notes drift a little)."""
    if positions.size == 0:
        return np.zeros(0)
    centre = np.round(positions).astype(np.int64)
    idx = np.clip(centre[:, None] + np.arange(-radius, radius + 1)[None, :], 0, env.size - 1)
    found: FloatArray = env[idx].max(axis=1)
    return found


def _ratio(part: FloatArray, whole: FloatArray) -> float:
    return float(part.mean()) / float(whole.mean()) if part.size and whole.size and whole.mean() > 0 else 0.0


def _evenness(values: FloatArray, group: int) -> float:
    """The weakest position's mean over the strongest's when beats are taken in groups of `group`."""
    if values.size < 2 * group:
        return 1.0
    means = np.array([values[k::group].mean() for k in range(group)])
    return float(means.min() / means.max()) if means.max() > 0 else 1.0


def _backbeat(kick: FloatArray, snare: FloatArray, period: int) -> float:
    """How strongly kick and snare take turns every `period` beats (rock's kick on 1 and 3, snare on 2 and 4)."""
    size = kick.size - kick.size % (2 * period)
    if size < 4 * period:
        return 0.0
    contrast = (kick[:size] - snare[:size]).reshape(-1, 2 * period)
    total = (kick[:size] + snare[:size]).mean()
    turns = contrast[:, :period].mean() - contrast[:, period:].mean()
    return float(abs(turns) / total) if total > 0 else 0.0


def _best_phase(beats: IntArray, mid: FloatArray, high: FloatArray) -> IntArray:
    """`beats`, or beats shifted by a quarter, half or three quarters of a beat where snare and hats mark them better.

    Syncopated music (funk, bossa nova, breakbeat) puts as many onsets between the
    beats as on them, kick and bass among them, and the dynamic programme may lock
    onto those; on the corpus' tune half, snare and hats (the mid and high registers)
    were on the beat in every piece, and hats counted twice gave the widest margin.
    """
    gaps = np.diff(beats).astype(np.float64)
    gaps = np.append(gaps, gaps[-1])
    scale_mid, scale_high = max(float(mid.mean()), 1e-9), max(float(high.mean()), 1e-9)
    best, best_score = beats, -np.inf
    for shift in (0.0, 0.25, 0.5, 0.75):
        shifted = np.round(beats + shift * gaps).astype(np.int64)
        shifted = shifted[shifted < mid.size]
        positions = shifted.astype(np.float64)
        score = float(_near(mid, positions).mean()) / scale_mid + 2 * float(_near(high, positions).mean()) / scale_high
        if score > best_score:
            best, best_score = shifted, score
    return best


def level_features(
    beats: IntArray, bpm: float, search: LevelSearch, hint: float | None, support: float
) -> dict[str, float]:
    """What the beats of one level sound like; the weights of `_level_score` say which way each one counts.

    `support` is the tempogram's score at the level's tempo over its best score (`_support`).
    """
    low, mid, _ = search.registers
    drums, pulse = low + mid, search.pulse
    gaps = np.diff(beats).astype(np.float64)
    positions = beats.astype(np.float64)
    on_pulse = _near(pulse, positions)
    on_drums = _near(drums, positions)
    kick, snare = _near(low, positions), _near(mid, positions)
    halves = beats[:-1] + gaps / 2
    quarters = np.concatenate([beats[:-1] + gaps / 4, beats[:-1] + 3 * gaps / 4])
    thirds = np.concatenate([beats[:-1] + gaps / 3, beats[:-1] + 2 * gaps / 3])
    centre, width = (_PRIOR_BPM, _PRIOR_OCTAVES) if hint is None else (hint, _HINT_OCTAVES)
    features = {
        "prior": -0.5 * (np.log2(bpm / centre) / width) ** 2,
        # With the prior, moves its peak: listeners' preferred rate is not the same for every style.
        "octave": float(np.log2(bpm / _PRIOR_BPM)) if hint is None else 0.0,
        "salience": float(np.log(max(_ratio(on_pulse, pulse), 1e-3))),
        # Drums between the beats: subdivisions, or beats of a faster level.
        "between_half": _ratio(_near(drums, halves), on_drums),
        "between_third": _ratio(_near(drums, thirds), on_drums),
        "between_quarter": _ratio(_near(pulse, quarters, radius=1), on_pulse),
        # Every second (third) beat weaker than the rest: an accent pattern, or subdivisions taken for beats.
        "evenness_2": float(np.log(max(_evenness(on_pulse, 2), 1e-3))),
        "evenness_3": float(np.log(max(_evenness(on_pulse, 3), 1e-3))),
        # Kick and snare taking turns beat by beat, or every two beats.
        "backbeat_1": _backbeat(kick, snare, 1),
        "backbeat_2": _backbeat(kick, snare, 2),
    }
    # Drums between the beats that rival those on them; and kick and snare taking turns where both
    # sound, not where every second beat is a hi-hat alone.
    features["between_half_excess"] = max(0.0, features["between_half"] - _RIVAL)
    features["backbeat_even"] = features["backbeat_1"] * float(np.exp(features["evenness_2"]))
    # How periodic the music is at this level's rate: a 3/2 level in a binary meter, or 4/3 in a
    # ternary one, lands on onsets often enough but recurs at none of the music's periods.
    features["support"] = float(np.log(max(support, 1e-3)))
    return features


def _level_score(features: dict[str, float]) -> float:
    return sum(_WEIGHTS[name] * value for name, value in features.items())


def track_levels(bands: OnsetBands, min_bpm: float, max_bpm: float, hint: float | None = None) -> LevelSearch:
    """Every candidate level's beats and features, and the envelopes and reference tempo they came from."""
    fps = bands.fps
    low, mid, high = (_rectified(register, fps) for register in _registers(bands))
    pulse = low + mid + _HAT_WEIGHT * high

    # The reference path is searched a little beyond the allowed range: a level inside it may be a multiple.
    lo_bpm, hi_bpm = max(20.0, min_bpm / 1.5), min(400.0, max_bpm * 1.5)
    octaves = np.log2(hi_bpm / lo_bpm)
    log_bpm = np.log2(lo_bpm) + np.arange(int(octaves * _GRID_PER_OCTAVE) + 1) / _GRID_PER_OCTAVE
    bpm_grid = 2.0**log_bpm
    times, scores = tempogram(pulse, fps, bpm_grid)
    broad = np.exp(-0.5 * ((log_bpm - np.log2(_PRIOR_BPM)) / 1.0) ** 2)
    path_bpm = bpm_grid[_viterbi(scores * broad[None, :], log_bpm)]
    reference = np.interp(np.arange(pulse.size) / fps, times, path_bpm)

    # Each level gets its own dynamic programme: read off another level's beats, it would inherit
    # their irregularities (a syncopated kick pattern tracked as the reference, say).
    local = _smooth(pulse, 1)
    levels: list[Level] = []
    search = LevelSearch(levels, pulse, (low, mid, high), reference)
    for factor in _LEVELS:
        curve = reference * factor
        if not min_bpm * 0.97 <= float(np.median(curve)) <= max_bpm * 1.03:
            continue
        beats = _dp_beats(local, fps * 60.0 / np.clip(curve, min_bpm, max_bpm))
        if beats.size < 4:
            continue
        beats = _best_phase(beats, mid, high)
        centres, gaps = _four_beat_gaps(beats)
        # The median gap: sub-frame precise, yet robust to a change of tempo.
        bpm = 60.0 * fps / float(np.median(gaps))
        support = _support(scores, log_bpm, np.log2(60.0 * fps / np.interp(times * fps, centres, gaps)))
        levels.append(Level(factor, beats, bpm, level_features(beats, bpm, search, hint, support)))
    return search


def _four_beat_gaps(beats: IntArray) -> tuple[FloatArray, FloatArray]:
    """The beat gap averaged over four beats (fewer if there are not four), and the frame each average is centred on."""
    gaps = np.diff(beats).astype(np.float64)
    width = min(4, gaps.size)
    averaged: FloatArray = np.convolve(gaps, np.full(width, 1 / width), mode="valid")
    # averaged[k] spans gaps k … k+width-1, which are centred on beat k + width/2.
    centres: FloatArray = beats[width // 2 : width // 2 + averaged.size].astype(np.float64)
    return centres, averaged


def _support(scores: FloatArray, log_bpm: FloatArray, level_log_bpm: FloatArray) -> float:
    """The tempogram's score along a level's tempo (one per window) over its best score, averaged over windows."""
    position = np.clip((level_log_bpm - log_bpm[0]) * _GRID_PER_OCTAVE, 0, log_bpm.size - 1)
    lo = np.minimum(position.astype(np.int64), log_bpm.size - 2)
    frac = position - lo
    rows = np.arange(scores.shape[0])
    along = scores[rows, lo] * (1 - frac) + scores[rows, lo + 1] * frac
    best = float(scores.max(axis=1).mean())
    return float(along.mean()) / best if best > 0 else 0.0


def _local_beat_period(beat_times: FloatArray) -> FloatArray:
    """The beat period at each interval: the median slope over the pairs of the six beats around it.

    A single interval moves with every onset that sounds early or late (a guitar's slow attack
    after the kick, a drummer's push); pairs over six beats do not, and a step of tempo is
    still seen within two beats.
    """
    intervals = np.diff(beat_times)
    size = min(2 * _CURVE_REACH + 2, beat_times.size)  # beats in each window
    if size < 3:
        return intervals.copy()
    first, second = np.triu_indices(size, k=1)
    starts = np.clip(np.arange(intervals.size) - _CURVE_REACH, 0, beat_times.size - size)
    windows = beat_times[starts[:, None] + np.arange(size)[None, :]]  # (intervals, size)
    slopes = (windows[:, second] - windows[:, first]) / (second - first)
    periods: FloatArray = np.median(slopes, axis=1)
    return periods


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


def _candidates(levels: list[Level], scores: FloatArray) -> tuple[tuple[float, float], ...]:
    order = np.argsort(-scores)
    weights = np.exp(scores - scores.max())
    confidence = weights / weights.sum()
    return tuple((levels[i].bpm, float(confidence[i])) for i in order[:3])


def track_beats(bands: OnsetBands, min_bpm: float, max_bpm: float, hint: float | None = None) -> BeatResult:
    """Beats, tempo, tempo candidates, downbeats, meter and tempo curve of onset envelopes sampled at `bands.fps`."""
    empty = np.zeros(0)
    nothing = BeatResult(None, empty, 0.0, empty, 4, empty, empty)
    fps = bands.fps
    if bands.full.size < fps * 2 or not np.any(bands.full > 0):
        return nothing
    search = track_levels(bands, min_bpm, max_bpm, hint)
    levels, pulse = search.levels, search.pulse
    if not levels:
        return nothing
    scores = np.array([_level_score(level.features) for level in levels])
    beats = levels[int(scores.argmax())].beats

    # Trim weak beats at the ends (an intro without a pulse, a fade-out).
    smoothed = _smooth(pulse, 3)
    at_beats = smoothed[beats]
    threshold = 0.5 * np.sqrt(np.mean(at_beats**2))
    strong = np.flatnonzero(at_beats >= threshold)
    beats = beats[strong[0] : strong[-1] + 1]
    if beats.size < 2:
        return nothing

    full = bands.full / max(float(bands.full.std()), 1e-12)
    refined = _refine(full, beats, radius=2)
    beat_times = refined / fps + LATENCY_S
    curve_times = (beat_times[1:] + beat_times[:-1]) / 2
    curve_bpm = 60.0 / _local_beat_period(beat_times)
    tempo = float(np.median(curve_bpm))

    def near(env: FloatArray) -> FloatArray:
        # Summed over ±2 frames: the flux of one onset splits between frames depending on its phase.
        idx = np.clip(beats[:, None] + np.arange(-2, 3)[None, :], 0, env.size - 1)
        summed: FloatArray = env[idx].sum(axis=1)
        return summed

    def relative(values: FloatArray) -> FloatArray:
        mean = values.mean()
        return values / mean - 1.0 if mean > 0 else np.zeros_like(values)

    accent = relative(near(bands.low)) + relative(near(full))
    meter, phase, _ = _meter(accent)
    downbeats = beat_times[phase::meter]

    hits = near(full) / 5 > np.mean(full) + np.std(full)
    # The first candidate is the level the beats follow: it shows the same tempo as the result.
    best, *others = _candidates(levels, scores)
    candidates = ((tempo, best[1]), *others)
    confidence = float(np.clip(0.5 * hits.mean() + 0.5 * candidates[0][1], 0.0, 1.0))
    return BeatResult(tempo, beat_times, confidence, downbeats, meter, curve_times, curve_bpm, candidates)
