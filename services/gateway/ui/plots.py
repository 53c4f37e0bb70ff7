"""Analysis plots as server-side SVG: no plotting library in the browser, and they print.

Each function takes the analyzer's JSON (see services/analyzer/features) and returns SVG
markup. Only numbers and escaped labels go into it. `tempo_levels` reads the same JSON for
the table of tempo candidates beside the tempo curve.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

from markupsafe import Markup

WIDTH = 1000
PAD_L, PAD_R, PAD_T, PAD_B = 44, 12, 12, 26
MAX_POINTS = 1200
BAND_COLORS = ("#6d5dfc", "#12a150", "#d48806", "#d92d20", "#2f7bf6", "#7a5af8", "#0e9384", "#c11574")


def _floats(values: Any) -> list[float]:
    if not isinstance(values, list):
        return []
    out: list[float] = []
    for v in values:
        if isinstance(v, int | float) and math.isfinite(v):
            out.append(float(v))
    return out


def _pool(times: Sequence[float], values: Sequence[float], limit: int = MAX_POINTS) -> tuple[list[float], list[float]]:
    """At most `limit` points, each the max of its bucket (peaks survive downsampling)."""
    n = min(len(times), len(values))
    if n <= limit:
        return list(times[:n]), list(values[:n])
    step = n / limit
    out_t: list[float] = []
    out_v: list[float] = []
    for i in range(limit):
        lo, hi = int(i * step), max(int((i + 1) * step), int(i * step) + 1)
        out_t.append(times[lo])
        out_v.append(max(values[lo:hi]))
    return out_t, out_v


class _Frame:
    """Maps time and value to plot coordinates and draws the axes."""

    def __init__(self, duration: float, height: int, lo: float = 0.0, hi: float = 1.0) -> None:
        self.duration = max(duration, 1e-6)
        self.height = height
        self.lo, self.hi = lo, (hi if hi > lo else lo + 1.0)

    def x(self, t: float) -> float:
        return round(PAD_L + (WIDTH - PAD_L - PAD_R) * min(max(t, 0.0), self.duration) / self.duration, 1)

    def y(self, v: float) -> float:
        span = self.height - PAD_T - PAD_B
        return round(PAD_T + span * (1 - (min(max(v, self.lo), self.hi) - self.lo) / (self.hi - self.lo)), 1)

    def axes(self, y_label: str) -> str:
        bottom = self.height - PAD_B
        parts = [f'<line class="axis" x1="{PAD_L}" y1="{bottom}" x2="{WIDTH - PAD_R}" y2="{bottom}"/>']
        ticks = _nice_step(self.duration)
        t = 0.0
        while t <= self.duration + 1e-9:
            x = self.x(t)
            parts.append(f'<line class="axis" x1="{x}" y1="{bottom}" x2="{x}" y2="{bottom + 4}"/>')
            parts.append(f'<text class="tick" x="{x}" y="{bottom + 16}" text-anchor="middle">{t:g}s</text>')
            t += ticks
        for v in (self.lo, self.hi):
            parts.append(f'<text class="tick" x="{PAD_L - 6}" y="{self.y(v) + 4}" text-anchor="end">{v:g}</text>')
        parts.append(f"<desc>{html.escape(y_label)} over time</desc>")
        return "".join(parts)

    def svg(self, body: str, title: str, kind: str) -> Markup:
        return Markup(
            f'<svg class="plot" data-plot="{kind}" viewBox="0 0 {WIDTH} {self.height}" role="img" '
            f'aria-label="{html.escape(title)}" preserveAspectRatio="none"><title>{html.escape(title)}</title>'
            f"{body}</svg>"
        )


def _nice_step(duration: float) -> float:
    raw = duration / 8
    for step in (0.1, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600):
        if step >= raw:
            return float(step)
    return float(math.ceil(raw / 600) * 600)


def _polyline(frame: _Frame, times: Sequence[float], values: Sequence[float], cls: str, color: str = "") -> str:
    t, v = _pool(times, values)
    if not t:
        return ""
    points = " ".join(f"{frame.x(a)},{frame.y(b)}" for a, b in zip(t, v, strict=True))
    style = f' stroke="{color}"' if color else ""
    return f'<polyline class="{cls}"{style} points="{points}"/>'


def _markers(frame: _Frame, times: Sequence[float], cls: str, top: float | None = None) -> str:
    y1 = PAD_T if top is None else top
    y2 = frame.height - PAD_B
    return "".join(f'<line class="{cls}" x1="{frame.x(t)}" y1="{y1}" x2="{frame.x(t)}" y2="{y2}"/>' for t in times)


def energy_plot(result: dict[str, Any]) -> Markup | None:
    """Energy envelope (filled) with beat, downbeat, onset and scene-change markers over one time axis."""
    audio = result.get("audio") or {}
    video = result.get("video") or {}
    energy = audio.get("energy") or {}
    beats = audio.get("beats") or {}
    times, values = _floats(energy.get("times")), _floats(energy.get("values"))
    beat_times = _floats(beats.get("beat_times"))
    downbeats = _floats(beats.get("downbeat_times"))
    onsets = _floats((audio.get("onsets") or {}).get("times"))
    scenes = _floats((video.get("scene_changes") or {}).get("times"))
    if not (times or beat_times or onsets or scenes):
        return None
    duration = float(result.get("duration") or 0) or max([*times, *beat_times, *onsets, *scenes, 1.0])
    frame = _Frame(duration, 220)
    body = [frame.axes("energy")]
    if times:
        t, v = _pool(times, values)
        bottom = frame.y(0.0)
        points = " ".join(f"{frame.x(a)},{frame.y(b)}" for a, b in zip(t, v, strict=True))
        body.append(f'<polygon class="energy" points="{frame.x(t[0])},{bottom} {points} {frame.x(t[-1])},{bottom}"/>')
    body.append(_markers(frame, beat_times, "beat"))
    body.append(_markers(frame, downbeats, "downbeat"))
    body.append(_markers(frame, onsets, "onset", top=frame.height - PAD_B - 14))
    body.append(_markers(frame, scenes, "scene"))
    return frame.svg("".join(body), "Energy envelope with beats, downbeats, onsets and scene changes", "energy")


def spectrum_plot(result: dict[str, Any]) -> tuple[Markup, list[tuple[str, str, list[float]]]] | None:
    """One curve per spectrum band; also the legend (name, colour, Hz range)."""
    spectrum = (result.get("audio") or {}).get("spectrum") or {}
    times = _floats(spectrum.get("times"))
    bands = spectrum.get("bands") or {}
    if not times or not isinstance(bands, dict) or not bands:
        return None
    frame = _Frame(float(result.get("duration") or 0) or times[-1], 200)
    body = [frame.axes("level")]
    legend: list[tuple[str, str, list[float]]] = []
    ranges = spectrum.get("band_ranges") or {}
    for i, (name, values) in enumerate(bands.items()):
        color = BAND_COLORS[i % len(BAND_COLORS)]
        body.append(_polyline(frame, times, _floats(values), "curve", color))
        legend.append((str(name), color, _floats(ranges.get(name))))
    return frame.svg("".join(body), "Spectrum band levels over time", "spectrum"), legend


def tempo_plot(result: dict[str, Any]) -> Markup | None:
    """The tempo curve (BPM over time)."""
    curve = ((result.get("audio") or {}).get("beats") or {}).get("tempo_curve") or {}
    times, bpm = _floats(curve.get("times")), _floats(curve.get("bpm"))
    if len(times) < 2 or not bpm:
        return None
    lo, hi = math.floor(min(bpm) / 10) * 10, math.ceil(max(bpm) / 10) * 10
    frame = _Frame(float(result.get("duration") or 0) or times[-1], 160, lo, hi if hi > lo else lo + 10)
    body = frame.axes("BPM") + _polyline(frame, times, bpm, "curve", "#2f7bf6")
    return frame.svg(body, "Tempo over time (BPM)", "tempo")


# How near (in octaves) the tempo must lie to a candidate to be that level: levels are at least 3:2
# (0.58 octave) apart, and the tempo (the curve's median) strays from a level's estimate by a few percent.
_SAME_LEVEL_OCTAVES = 0.2


def tempo_levels(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The tempo candidates (metrical levels, best first) as rows of `bpm`, `confidence` (0..1 or None)
    and `chosen`: the level the beats came at, the one the tempo lies on (a tempo hint may pick another
    than the first)."""
    beats = (result.get("audio") or {}).get("beats") or {}
    raw = beats.get("tempo_candidates")
    rows: list[dict[str, Any]] = []
    for candidate in raw if isinstance(raw, list) else []:
        if not isinstance(candidate, dict):
            continue
        bpm, confidence = _floats([candidate.get("bpm")]), _floats([candidate.get("confidence")])
        if bpm and bpm[0] > 0:
            rows.append({"bpm": bpm[0], "confidence": confidence[0] if confidence else None, "chosen": False})
    tempo = _floats([beats.get("tempo")])
    if rows and tempo and tempo[0] > 0:
        nearest = min(rows, key=lambda row: abs(math.log2(row["bpm"] / tempo[0])))
        nearest["chosen"] = abs(math.log2(nearest["bpm"] / tempo[0])) < _SAME_LEVEL_OCTAVES
    return rows


def motion_plot(result: dict[str, Any]) -> Markup | None:
    """Per-frame motion energy of a video, with its scene changes."""
    video = result.get("video") or {}
    motion = video.get("motion") or {}
    times, values = _floats(motion.get("times")), _floats(motion.get("values"))
    if not times:
        return None
    frame = _Frame(float(result.get("duration") or 0) or times[-1], 160)
    scenes = _floats((video.get("scene_changes") or {}).get("times"))
    body = frame.axes("motion") + _polyline(frame, times, values, "curve", "#0e9384") + _markers(frame, scenes, "scene")
    return frame.svg(body, "Motion energy per frame", "motion")
