"""Beat-tracking corpus: real-instrument pieces composed as MIDI in code and rendered with FluidSynth.

Each piece is written here with mido — drums on channel 10, a bass line, chords and often a
melody on General MIDI instruments, velocities that vary — and rendered with the FluidR3 GM
soundfont. The ground truth comes from the MIDI itself: beat times from the tempo map (the
set_tempo events integrated exactly), at the conventional annotation level (the quarter note in
x/4 and 2/4, the dotted quarter in 6/8 and 12/8), plus the synthesizer's onset latency, measured once per cache by
rendering isolated notes at known times. Humanised timing jitters the notes, never the truth.

Audio goes into a cache directory named by a hash of this file (by default
~/.cache/artdag-bench/beats/<hash>); nothing is committed, and a second run renders nothing.
The pieces come in pairs of similar ones, one in each half: `tune` for tuning a tracker,
`report` for scoring it.

    .venv/bin/python bench/beat_corpus.py [--formats wav,mp3,ogg,m4a] [--cache DIR]

Needs the fluidsynth CLI, the FluidR3 GM soundfont (Debian: fluidsynth, fluid-soundfont-gm),
ffmpeg for the compressed copies, and mido (the `bench` extra).

prints one line per piece (split, tempo, meter, duration, level, how well the audio's onsets
sit on the truth) and the measured latency. From other code::

    from bench.beat_corpus import build_corpus

    for piece in build_corpus(formats=("wav", "mp3")):
        piece.path("mp3"), piece.beats, piece.downbeats, piece.tempo, piece.split
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import os
import re
import subprocess
import sys
import wave
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import cache, partial
from pathlib import Path
from typing import Any

import mido  # type: ignore[import-untyped]
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
SR = 44_100
# MIDI ticks per quarter note. FluidSynth's player re-anchors its clock at each tempo change on a
# whole tick: at 960 the pieces with a tempo change every 8th drifted 5–9 ms from the tempo map
# over 40 s; at 7680 they stay within its 1.5 ms block quantisation.
TPB = 7680
FORMATS = ("wav", "mp3", "ogg", "m4a")
DEFAULT_CACHE_ROOT = Path.home() / ".cache" / "artdag-bench" / "beats"
RENDER_WORKERS = 2
PEAK = 10 ** (-1 / 20)  # every render is normalised to a peak of -1 dBFS
ENCODERS = {
    "mp3": ["-c:a", "libmp3lame", "-b:a", "192k"],
    "ogg": ["-c:a", "libvorbis", "-q:a", "5"],
    "m4a": ["-c:a", "aac", "-b:a", "192k"],
}


# --- tempo map -------------------------------------------------------------------------------------------------


class TempoMap:
    """Ticks ↔ seconds for a list of MIDI tempo changes; exact, since the tempo is constant between changes."""

    def __init__(self, changes: Sequence[tuple[int, int]]) -> None:
        # changes: (tick, microseconds per quarter note), the first at tick 0, in tick order
        self.ticks = np.array([tick for tick, _ in changes], dtype=np.float64)
        self.us = np.array([us for _, us in changes], dtype=np.float64)
        spans = np.diff(self.ticks) * self.us[:-1] / (TPB * 1e6)
        self.starts: FloatArray = np.concatenate([[0.0], np.cumsum(spans)])

    def seconds(self, ticks: npt.ArrayLike) -> FloatArray:
        at = np.asarray(ticks, dtype=np.float64)
        i = np.clip(np.searchsorted(self.ticks, at, side="right") - 1, 0, None)
        return self.starts[i] + (at - self.ticks[i]) * self.us[i] / (TPB * 1e6)

    def ticks_at(self, seconds: npt.ArrayLike) -> FloatArray:
        at = np.asarray(seconds, dtype=np.float64)
        i = np.clip(np.searchsorted(self.starts, at, side="right") - 1, 0, None)
        return self.ticks[i] + (at - self.starts[i]) * TPB * 1e6 / self.us[i]


Tempo = float | Callable[[float], float]  # beats per minute, or a function of the position in beats


def ramp(start: float, end: float, beats: float, after: float = 0.0) -> Callable[[float], float]:
    """A tempo that holds `start` for `after` beats, then moves linearly to `end` over `beats` beats."""
    return lambda b: start + (end - start) * min(1.0, max(0.0, (b - after) / beats))


def step(before: float, after: float, at: float) -> Callable[[float], float]:
    """A tempo that jumps from `before` to `after` at beat `at`."""
    return lambda b: before if b < at else after


def drift(bpm: float, seed: int, depth: float = 0.03) -> Callable[[float], float]:
    """A tempo wandering slowly within ±`depth` of `bpm`, as a band without a click does."""
    rng = np.random.default_rng(seed)
    periods = np.array([23.0, 41.0, 67.0])  # in beats
    phases = rng.uniform(0, 2 * np.pi, periods.size)
    weights = np.array([0.5, 0.3, 0.2])
    return lambda b: bpm * (1 + depth * float(np.sum(weights * np.sin(2 * np.pi * b / periods + phases))))


# --- harmony ---------------------------------------------------------------------------------------------------

PITCH_CLASSES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
QUALITIES = {
    "": (0, 4, 7),
    "m": (0, 3, 7),
    "5": (0, 7),
    "7": (0, 4, 7, 10),
    "m7": (0, 3, 7, 10),
    "maj7": (0, 4, 7, 11),
    "6": (0, 4, 7, 9),
    "9": (0, 4, 7, 10, 14),
    "m9": (0, 3, 7, 10, 14),
    "sus4": (0, 5, 7),
    "dim": (0, 3, 6),
}


@cache
def parse_chord(symbol: str) -> tuple[int, tuple[int, ...]]:
    """'F#m7' → (6, (0, 3, 7, 10)): the root's pitch class and the intervals above it."""
    match = re.fullmatch(r"([A-G])([#b]?)(.*)", symbol)
    if match is None or match[3] not in QUALITIES:
        raise ValueError(f"unknown chord symbol {symbol!r}")
    accidental = {"#": 1, "b": -1, "": 0}[match[2]]
    return (PITCH_CLASSES[match[1]] + accidental) % 12, QUALITIES[match[3]]


def lowest(pitch_class: int, low: int) -> int:
    """The lowest MIDI pitch of `pitch_class` at or above `low`."""
    return low + (pitch_class - low) % 12


# --- scores ----------------------------------------------------------------------------------------------------

DRUMS = {
    "kick": 36,
    "rim": 37,
    "snare": 38,
    "clap": 39,
    "floor": 41,
    "hat": 42,
    "pedal": 44,
    "lowtom": 45,
    "open": 46,
    "midtom": 47,
    "crash": 49,
    "hitom": 50,
    "ride": 51,
    "tamb": 54,
    "cabasa": 69,
    "shaker": 70,
    # Latin and orchestral percussion
    "bell": 53,
    "cowbell": 56,
    "bongo": 60,
    "conga": 62,  # muted high conga: the tumbao's slap
    "openconga": 63,
    "lowconga": 64,
    "timbale": 65,
    "agogo": 67,
    "guiro": 73,
    "claves": 75,
}
ACCENTS = {"X": 1.25, "x": 1.0, "o": 0.7, "g": 0.4}
BASS_TONES = {"R": 0, "T": None, "F": 7, "S": 9, "V": 10, "O": 12}  # T: the chord's third; A: approach the next root
STANDARD, ROOM, POWER, ELECTRONIC, TR808, JAZZ, BRUSH = 0, 8, 16, 24, 25, 32, 40  # GM drum kits
# A few GM programs by name, to keep the pieces readable.
PIANO, BRIGHT_PIANO, E_PIANO, HARPSICHORD, CLAV, VIBES, ORGAN, ROCK_ORGAN, ACCORDION = 0, 1, 4, 6, 7, 11, 16, 18, 21
NYLON, STEEL, CLEAN, MUTED, OVERDRIVE, DISTORTION = 24, 25, 27, 28, 29, 30
UPRIGHT, FINGER_BASS, PICK_BASS, FRETLESS, SLAP_BASS, SYNTH_BASS, SYNTH_BASS2 = 32, 33, 34, 35, 36, 38, 39
VIOLIN, CELLO, PIZZICATO, STRINGS, BRASS, SAX, TENOR_SAX, CLARINET, FLUTE = 40, 42, 45, 48, 61, 65, 66, 71, 73
BASSOON, WHISTLE, SAW_LEAD, WARM_PAD, POLY_PAD, TUBA = 70, 78, 81, 89, 90, 58
PERC_ORGAN, HARMONICA, VIOLA, CHOIR, TRUMPET, PICCOLO, SQUARE_LEAD, BANJO, FIDDLE = 17, 22, 41, 52, 56, 72, 80, 105, 110


@dataclass
class Part:
    """A pitched part, remembered so that the final chord knows what to play on its channel."""

    channel: int
    role: str  # "bass", "chords", "melody"
    low: int
    progression: Sequence[str]
    power: bool = False


class Score:
    """A piece under construction: meter, tempo map and the notes of its parts, all in MIDI ticks.

    Patterns are one bar of steps, bars separated by '|' (cycled): '.' rest, '-' hold the previous
    step, drums and chords 'X' 'x' 'o' 'g' (accent, normal, soft, ghost), bass 'R' root, 'T' third,
    'F' fifth, 'S' sixth, 'V' flat seventh, 'O' octave, 'A' a semitone below the next beat's root
    (lower case: softer), arpeggios the index of the chord tone. Progressions give one bar per
    entry (two symbols split the bar), cycled. Each pitched part takes a channel of its own and
    returns it.
    """

    def __init__(
        self,
        meter: tuple[int, int],
        tempo: Tempo,
        seed: int,
        *,
        seconds: float = 30.0,
        tempo_step: float = 0.25,
        reverb: float = 0.0,
        humanize_ms: float = 0.0,
    ) -> None:
        self.numerator, self.denominator = meter
        self.compound = self.denominator == 8 and self.numerator % 3 == 0  # 6/8: the beat is a dotted quarter
        self.beat_ticks = TPB * 4 // self.denominator * (3 if self.compound else 1)
        self.bar_ticks = self.numerator * TPB * 4 // self.denominator
        self.beats_per_bar = self.bar_ticks // self.beat_ticks
        self.rng = np.random.default_rng(seed)
        self.seed = seed
        self.reverb = reverb
        self.humanize_ms = humanize_ms
        self.changes = self._tempo_changes(tempo if callable(tempo) else (lambda _b: tempo), tempo_step, seconds)
        self.map = TempoMap(self.changes)
        # Whole bars until at least 2 s before `seconds`; the final chord on the next downbeat rings for 2 s.
        bar_ends = self.map.seconds(np.arange(1, 2000) * self.bar_ticks)
        self.bars = int(np.searchsorted(bar_ends, seconds - 2.0)) + 1
        self.end_tick = self.bars * self.bar_ticks
        self.end_of_track = round(float(self.map.ticks_at(self.map.seconds(self.end_tick) + 2.0)))
        self.notes: list[tuple[float, float, int, int, int]] = []  # tick, length, channel, pitch, velocity
        self.controls: list[tuple[int, int, int, int]] = []  # tick, channel, controller, value
        self.programs: dict[int, int] = {}
        self.parts: list[Part] = []

    def _tempo_changes(self, tempo: Callable[[float], float], every: float, seconds: float) -> list[tuple[int, int]]:
        changes: list[tuple[int, int]] = []
        stride = round(every * self.beat_ticks)
        tick, elapsed = 0, 0.0
        while elapsed < seconds + 5:
            quarter_us = round(60e6 * TPB / (tempo(tick / self.beat_ticks) * self.beat_ticks))
            if not changes or changes[-1][1] != quarter_us:
                changes.append((tick, quarter_us))
            tick += stride
            elapsed += stride * quarter_us / (TPB * 1e6)
        return changes

    # -- truth

    def beat_times(self) -> FloatArray:
        """Every beat from the first to the final downbeat, in seconds (without the synthesizer's latency)."""
        return self.map.seconds(np.arange(0, self.end_tick + 1, self.beat_ticks))

    def downbeat_times(self) -> FloatArray:
        return self.map.seconds(np.arange(0, self.end_tick + 1, self.bar_ticks))

    def tempo_curve(self) -> tuple[FloatArray, FloatArray]:
        """(seconds, beats per minute) at each tempo change; the tempo holds until the next."""
        changes = [(tick, us) for tick, us in self.changes if tick <= self.end_tick]
        times = self.map.seconds([tick for tick, _ in changes])
        bpm = np.array([60e6 * TPB / (us * self.beat_ticks) for _, us in changes])
        return times, bpm

    # -- building blocks

    def _all_bars(self, bars: range | None) -> range:
        return range(self.bars) if bars is None else range(bars.start, min(bars.stop, self.bars))

    def _steps(self, pattern: str, bar: int, swing: float) -> list[tuple[float, float, str]]:
        """(tick, length up to the next step that is not a hold, symbol) of each sounding step in `bar`."""
        segments = pattern.split("|")
        cells = segments[bar % len(segments)].replace(" ", "")
        if len(cells) % self.beats_per_bar or self.bar_ticks % len(cells):
            raise ValueError(f"pattern {cells!r} does not divide a bar of {self.beats_per_bar} beats")
        size = self.bar_ticks / len(cells)
        out = []
        for i, symbol in enumerate(cells):
            if symbol in ".-":
                continue
            held = 1
            while i + held < len(cells) and cells[i + held] == "-":
                held += 1
            delay = swing * size if i % 2 else 0.0
            out.append((bar * self.bar_ticks + i * size + delay, held * size - delay, symbol))
        return out

    def _chord(self, progression: Sequence[str], tick: float) -> tuple[int, tuple[int, ...]]:
        bar = int(tick // self.bar_ticks)
        symbols = progression[bar % len(progression)].split()
        return parse_chord(symbols[int((tick % self.bar_ticks) * len(symbols) // self.bar_ticks)])

    def _note(self, tick: float, length: float, channel: int, pitch: int, velocity: float) -> None:
        varied = int(np.clip(round(velocity + self.rng.integers(-8, 9)), 1, 127))
        self.notes.append((tick, length, channel, pitch, varied))

    def _channel(self, program: int, volume: int) -> int:
        channel = next(c for c in range(16) if c != 9 and c not in self.programs)
        self.programs[channel] = program
        self.controls.append((0, channel, 7, volume))
        return channel

    # -- parts

    def drums(
        self,
        groove: dict[str, str],
        *,
        kit: int = STANDARD,
        velocity: int = 100,
        volume: int = 110,
        bars: range | None = None,
        swing: float = 0.0,
        fills: bool = True,
    ) -> None:
        """Drums on channel 10: a groove (instrument → pattern), a crash every 8 bars, a fill before it."""
        self.programs[9] = kit
        self.controls.append((0, 9, 7, volume))
        played = self._all_bars(bars)
        for bar in played:
            start, end = bar * self.bar_ticks, (bar + 1) * self.bar_ticks
            fill_from = end - self.beat_ticks if fills and (bar + 1) % 8 == 0 and bar + 1 < self.bars else end
            for name, pattern in groove.items():
                for tick, length, symbol in self._steps(pattern, bar, swing):
                    if tick < fill_from:
                        self._note(tick, length, 9, DRUMS[name], velocity * ACCENTS[symbol])
            if "crash" not in groove and (bar % 8 == 0 or bar == played.start):
                self._note(start, self.beat_ticks, 9, DRUMS["crash"], velocity)
            if fill_from < end:
                hits = 3 if self.compound else 4
                toms = ["snare", "hitom", "midtom", "lowtom"]
                for k in range(hits):
                    tick = fill_from + k * self.beat_ticks / hits
                    self._note(tick, self.beat_ticks / hits, 9, DRUMS[toms[k]], velocity * (0.7 + 0.12 * k))

    def bass(
        self,
        program: int,
        pattern: str,
        progression: Sequence[str],
        *,
        low: int = 28,
        velocity: int = 100,
        volume: int = 105,
        bars: range | None = None,
        swing: float = 0.0,
    ) -> int:
        """A bass line: chord tones of the progression on the pattern's steps."""
        channel = self._channel(program, volume)
        self.parts.append(Part(channel, "bass", low, progression))
        for bar in self._all_bars(bars):
            for tick, length, symbol in self._steps(pattern, bar, swing):
                root, intervals = self._chord(progression, tick)
                base = lowest(root, low)
                if symbol.upper() == "A":
                    pitch = lowest(self._chord(progression, tick + self.beat_ticks)[0], low + 1) - 1
                elif symbol.upper() == "T":
                    pitch = base + next((i for i in intervals if i in (3, 4)), 4)
                else:
                    pitch = base + (BASS_TONES[symbol.upper()] or 0)
                self._note(tick, 0.92 * length, channel, pitch, velocity * (1.0 if symbol.isupper() else 0.7))
        return channel

    def chords(
        self,
        program: int,
        pattern: str,
        progression: Sequence[str],
        *,
        low: int = 55,
        velocity: int = 80,
        volume: int = 90,
        power: bool = False,
        bars: range | None = None,
        swing: float = 0.0,
    ) -> int:
        """Block chords (close voicing from `low`, or power chords) on the pattern's steps."""
        channel = self._channel(program, volume)
        self.parts.append(Part(channel, "chords", low, progression, power))
        for bar in self._all_bars(bars):
            for tick, length, symbol in self._steps(pattern, bar, swing):
                for pitch in voicing(*self._chord(progression, tick), low, power):
                    self._note(tick, 0.92 * length, channel, pitch, velocity * ACCENTS[symbol])
        return channel

    def arpeggio(
        self,
        program: int,
        pattern: str,
        progression: Sequence[str],
        *,
        low: int = 48,
        velocity: int = 80,
        volume: int = 90,
        bars: range | None = None,
        swing: float = 0.0,
    ) -> int:
        """Broken chords: each step plays the chord tone its digit names (0 the root, counting up)."""
        channel = self._channel(program, volume)
        self.parts.append(Part(channel, "chords", low, progression))
        for bar in self._all_bars(bars):
            for tick, length, symbol in self._steps(pattern, bar, swing):
                root, intervals = self._chord(progression, tick)
                tones = sorted(lowest(root, low) + i for i in intervals)
                index = int(symbol)
                pitch = tones[index % len(tones)] + 12 * (index // len(tones))
                on_beat = tick % self.beat_ticks == 0
                self._note(tick, length, channel, pitch, velocity * (1.1 if on_beat else 0.9))
        return channel

    def melody(
        self,
        program: int,
        pattern: str,
        progression: Sequence[str],
        *,
        low: int = 67,
        span: int = 14,
        velocity: int = 85,
        volume: int = 95,
        bars: range | None = None,
        swing: float = 0.0,
    ) -> int:
        """A tune that wanders over the chord tones between `low` and `low + span`, mostly by small steps."""
        channel = self._channel(program, volume)
        self.parts.append(Part(channel, "melody", low, progression))
        pitch = low + span // 2
        for bar in self._all_bars(bars):
            for tick, length, symbol in self._steps(pattern, bar, swing):
                root, intervals = self._chord(progression, tick)
                classes = {(root + i) % 12 for i in intervals}
                tones = np.array([p for p in range(low, low + span + 1) if p % 12 in classes])
                weights = np.exp(-np.abs(tones - pitch) / 3.0) * np.where(tones == pitch, 0.3, 1.0)
                pitch = int(tones[self.rng.choice(tones.size, p=weights / weights.sum())])
                self._note(tick, 0.95 * length, channel, pitch, velocity * ACCENTS[symbol])
        return channel

    def fade_in(self, seconds: float, channels: Sequence[int]) -> None:
        """Raise the expression (CC 11) of `channels` from silence to full over the first `seconds`."""
        for k in range(33):
            tick = round(float(self.map.ticks_at(seconds * k / 32)))
            for channel in channels:
                self.controls.append((tick, channel, 11, round(127 * k / 32)))

    def finish(self) -> Score:
        """The final hit on the downbeat after the last bar: the first chord of each part, crash and kick."""
        ring = float(self.map.ticks_at(self.map.seconds(self.end_tick) + 1.7)) - self.end_tick
        for part in self.parts:
            root, intervals = parse_chord(part.progression[0].split()[0])
            chord = voicing(root, intervals, part.low, part.power)
            pitches = {"bass": [lowest(root, part.low)], "chords": chord, "melody": [chord[-1]]}[part.role]
            for pitch in pitches:
                self._note(self.end_tick, ring, part.channel, pitch, 95)
        if 9 in self.programs:
            self._note(self.end_tick, ring, 9, DRUMS["crash"], 110)
            self._note(self.end_tick, ring, 9, DRUMS["kick"], 110)
        return self

    # -- MIDI

    def _timed_notes(self) -> list[tuple[int, int, int, int, int]]:
        """Notes as (on, off, channel, pitch, velocity) in whole ticks, humanised if asked; no overlaps per key."""
        ticks = np.array([n[0] for n in self.notes])
        if self.humanize_ms:
            jitter = np.random.default_rng(self.seed + 1).uniform(-1, 1, ticks.size) * self.humanize_ms / 1000
            ticks = np.maximum(0.0, self.map.ticks_at(self.map.seconds(ticks) + jitter))
        notes = sorted(
            (round(float(on)), max(1, round(length)), channel, pitch, velocity)
            for on, (_, length, channel, pitch, velocity) in zip(ticks, self.notes, strict=True)
        )
        next_on: dict[tuple[int, int], int] = {}
        timed = []
        for on, length, channel, pitch, velocity in reversed(notes):
            key = (channel, pitch)
            off = min(on + length, next_on.get(key, on + length))
            next_on[key] = on
            if off > on:
                timed.append((on, off, channel, pitch, velocity))
        return timed

    def to_midi(self) -> mido.MidiFile:
        """One track: meter, tempo changes, programs and controllers, then the notes."""
        events: list[tuple[int, int, Any]] = []  # tick, order at the same tick, message
        events.append(
            (0, 0, mido.MetaMessage("time_signature", numerator=self.numerator, denominator=self.denominator))
        )
        events += [(tick, 0, mido.MetaMessage("set_tempo", tempo=us)) for tick, us in self.changes]
        for channel, program in self.programs.items():
            events.append((0, 1, mido.Message("program_change", channel=channel, program=program)))
            events.append(
                (0, 1, mido.Message("control_change", channel=channel, control=91, value=round(127 * self.reverb)))
            )
            events.append((0, 1, mido.Message("control_change", channel=channel, control=93, value=0)))
        events += [
            (tick, 1, mido.Message("control_change", channel=channel, control=control, value=value))
            for tick, channel, control, value in self.controls
        ]
        for on, off, channel, pitch, velocity in self._timed_notes():
            events.append((off, 2, mido.Message("note_off", channel=channel, note=pitch, velocity=0)))
            events.append((on, 3, mido.Message("note_on", channel=channel, note=pitch, velocity=velocity)))
        events = [e for e in events if e[0] < self.end_of_track]
        events.sort(key=lambda e: (e[0], e[1]))
        track = mido.MidiTrack()
        last = 0
        for tick, _, message in events:
            track.append(message.copy(time=tick - last))
            last = tick
        track.append(mido.MetaMessage("end_of_track", time=self.end_of_track - last))
        midi = mido.MidiFile(type=0, ticks_per_beat=TPB)
        midi.tracks.append(track)
        return midi


def voicing(root: int, intervals: Sequence[int], low: int, power: bool = False) -> list[int]:
    """The chord's pitches: each tone at its lowest above `low` (close voicing), or root, fifth, octave."""
    if power:
        base = lowest(root, low)
        return [base, base + 7, base + 12]
    return sorted(lowest((root + i) % 12, low) for i in intervals)


# --- the pieces ------------------------------------------------------------------------------------------------
# Each function returns a finished Score; `options` go to Score (seconds, tempo_step, reverb, humanize_ms).

ROCK_BEAT = {
    "kick": "x... .... x.x. .... | x... ...x x.x. ....",
    "snare": ".... x... .... x... | .... x... .... x..g",
    "hat": "x.o. x.o. x.o. x.o.",
}


def rock(
    tempo: Tempo, seed: int, *, key: Sequence[str] = ("E", "D", "A", "E"), guitar: int = OVERDRIVE, **options: Any
) -> Score:
    s = Score((4, 4), tempo, seed, **options)
    s.drums(ROCK_BEAT)
    s.bass(PICK_BASS, "RRRR RRRR | RRRR RRFA", key)
    s.chords(guitar, "X-x- x-x- X-x- x-xx", key, low=40, power=True)
    s.chords(ROCK_ORGAN, "x--- ---- x--- ----", key, low=55, velocity=60, volume=70)
    return s.finish()


def slow_rock(tempo: Tempo, seed: int, **options: Any) -> Score:
    key = ("G", "Em", "C", "D")
    s = Score((4, 4), tempo, seed, **options)
    s.drums({"kick": "x....... x.x.....", "snare": "....x... ....x...", "hat": "x.o.x.o. x.o.x.o."}, kit=ROOM)
    s.bass(FINGER_BASS, "R--R R-F- | R--R R-A-", key)
    s.chords(PIANO, "x-x- x-x-", key, low=55, velocity=70)
    s.arpeggio(CLEAN, "0121 3121 0121 3121", key, low=52, velocity=70, volume=80)
    return s.finish()


def pop(tempo: Tempo, seed: int, *, intro_bars: int = 0, **options: Any) -> Score:
    key = ("C", "G", "Am", "F")
    s = Score((4, 4), tempo, seed, **options)
    band = range(intro_bars, s.bars)
    s.chords(PIANO, "x--x --x- x--x --x-", key, low=55, velocity=75)
    s.drums({"kick": "x....... x.x.....", "snare": "....x... ....x...", "hat": "x.x.x.x. x.x.x.x."}, bars=band)
    s.bass(FINGER_BASS, "R..R ..R. R..R ..FA", key, bars=band)
    s.chords(STEEL, "x.xx .xx. x.xx .xx.", key, low=52, velocity=65, volume=80, bars=band)
    s.melody(FLUTE, "x-x- x.x- x--- x.x. | x-x- x-x- x--- ----", key, low=72, bars=range(intro_bars + 2, s.bars))
    return s.finish()


def house(tempo: Tempo, seed: int, *, fade: float = 0.0, **options: Any) -> Score:
    key = ("Fm7", "Fm7", "Bbm7", "C7")
    s = Score((4, 4), tempo, seed, **options)
    s.drums(
        {
            "kick": "x... x... x... x...",
            "clap": ".... x... .... x...",
            "open": "..x. ..x. ..x. ..x.",
            "hat": "g.g. g.g. g.g. g.g.",
        },
        kit=ELECTRONIC,
        fills=False,
    )
    pad = s.chords(WARM_PAD, "x--- ---- ---- ----", key, low=56, velocity=70, volume=85)
    band = range(s.bars)
    if fade:  # drums and pad fade in; bass and piano join on the first downbeat after
        s.fade_in(fade, [9, pad])
        band = range(next(b for b in band if s.map.seconds(b * s.bar_ticks) >= fade), s.bars)
    s.bass(SYNTH_BASS, "..R. ..R. ..R. ..O.", key, bars=band)
    s.chords(PIANO, "x..x ..x. ..x. x...", key, low=60, velocity=80, bars=band)
    return s.finish()


def techno(tempo: Tempo, seed: int, **options: Any) -> Score:
    key = ("Dm", "Dm", "Bb", "C")
    s = Score((4, 4), tempo, seed, **options)
    s.drums(
        {
            "kick": "x... x... x... x...",
            "clap": ".... x... .... x...",
            "open": "..x. ..x. ..x. ..x.",
            "ride": "o.o. o.o. o.o. o.o.",
            "hat": "gggg gggg gggg gggg",
        },
        kit=ELECTRONIC,
        fills=False,
    )
    s.bass(SYNTH_BASS2, "..RR ..RR ..RR ..RO", key, low=26)
    s.arpeggio(SAW_LEAD, "0.2. 1.3. 0.2. 1.2.", key, low=62, velocity=70, volume=75)
    s.chords(POLY_PAD, "x--- ---- ---- ----", key, low=57, velocity=60, volume=70)
    return s.finish()


def funk(tempo: Tempo, seed: int, *, clav: bool = False, **options: Any) -> Score:
    key = ("E9", "E9", "A9", "E9") if not clav else ("Gm7", "Gm7", "C9", "C9")
    s = Score((4, 4), tempo, seed, **options)
    s.drums({"kick": "x.....x. ..x..x..", "snare": "....x..g .g..x..g", "hat": "xoxo xoxo xoxo xoxo"})
    s.bass(SLAP_BASS, "R..O ..R. r.F. .T.R | R..O ..R. r.F. O.VA", key)
    if clav:
        s.chords(CLAV, ".x.x ..x. .x.x ..xx", key, low=55, velocity=80)
        s.chords(BRASS, "x--. .... .... x.x. | .... .... x--. ....", key, low=62, velocity=85, volume=85)
    else:
        s.chords(MUTED, "..x. ..x. x..x ..x.", key, low=55, velocity=85)
        s.chords(E_PIANO, "x--- ---- x--- ----", key, low=52, velocity=60, volume=80)
    return s.finish()


def shuffle(tempo: Tempo, seed: int, **options: Any) -> Score:
    key = ("A7", "D7", "A7", "A7", "D7", "D7", "A7", "A7", "E7", "D7", "A7", "E7")
    s = Score((4, 4), tempo, seed, **options)
    s.drums({"kick": "x.. ... x.. ...", "snare": "... x.. ... x..", "hat": "x.o x.o x.o x.o"})
    s.bass(FINGER_BASS, "R.R F.F S.S F.F", key)
    s.chords(PIANO, "..x ..x ..x ..x", key, low=57, velocity=70)
    s.chords(ORGAN, "x-- --- --- ---", key, low=52, velocity=60, volume=75)
    return s.finish()


def swing(tempo: Tempo, seed: int, **options: Any) -> Score:
    key = ("Dm7", "G7", "Cmaj7", "A7")
    s = Score((4, 4), tempo, seed, **options)
    s.drums(
        {"ride": "x.. x.x x.. x.x", "pedal": "... x.. ... x..", "kick": "g.. ... g.. ...", "snare": "... ... ..g ..."},
        kit=JAZZ,
    )
    s.bass(UPRIGHT, "RTFA", key, low=28)
    s.chords(PIANO, "x.. ..x ... ... | ... ..x ... x..", key, low=53, velocity=70)
    s.melody(TENOR_SAX, "x.. x.x x-- ..x | x-- --- x.x x..", key, low=58, velocity=80)
    return s.finish()


def halftime(tempo: Tempo, seed: int, **options: Any) -> Score:
    key = ("Em", "C", "G", "D")
    s = Score((4, 4), tempo, seed, **options)
    s.drums(
        {
            "kick": "x... .... ..x. .... | x... .... ..x. .x..",
            "snare": ".... .... X... ....",
            "hat": "x.o. x.o. x.o. x.o.",
        }
    )
    s.bass(PICK_BASS, "R--- ---- R--- --FA", key)
    s.chords(DISTORTION, "X--- --x- x--- ----", key, low=40, power=True)
    s.chords(STRINGS, "x--- ---- ---- ----", key, low=60, velocity=60, volume=80)
    return s.finish()


def trap(tempo: Tempo, seed: int, **options: Any) -> Score:
    key = ("Cm", "Cm", "Ab", "G")
    s = Score((4, 4), tempo, seed, **options)
    s.drums(
        {
            "kick": "x... ...x ..x. .... | x... .... ..x. .x..",
            "clap": ".... .... x... ....",
            # 32nd-note and 16th-triplet rolls in every other bar
            "hat": "x.x.x.x. x.x.x.x. x.x.x.x. x.xxoxox | x..x..x..x..x..xxx x..xxx",
        },
        kit=TR808,
        fills=False,
    )
    s.bass(SYNTH_BASS, "R--- ---R --R- ---- | R--- ---- --R- -R--", key, low=24, velocity=110)
    s.arpeggio(VIBES, "0.2. 4.2. 1.3. 2...", key, low=72, velocity=70, volume=75)
    s.chords(WARM_PAD, "x--- ---- ---- ----", key, low=55, velocity=55, volume=70)
    return s.finish()


def waltz(tempo: Tempo, seed: int, *, fast: bool = False, **options: Any) -> Score:
    key = ("F", "C7", "C7", "F", "Bb", "F", "C7", "F")
    s = Score((3, 4), tempo, seed, **options)
    s.drums({"kick": "x..", "snare": ".oo", "hat": "xxx"} if fast else {"kick": "x..", "rim": ".oo"}, kit=BRUSH)
    s.bass(TUBA if fast else UPRIGHT, "R.. | F..", key, low=29)
    s.chords(ACCORDION if fast else PIANO, ".xx", key, low=57, velocity=70)
    s.melody(VIOLIN, "x-xx-x | x-x-x- | x----- | x-x-x-" if fast else "x-x-x- | x----x", key, low=67)
    return s.finish()


def jazz_waltz(tempo: Tempo, seed: int, **options: Any) -> Score:
    key = ("Dm7", "G7", "Cmaj7", "Cmaj7")
    s = Score((3, 4), tempo, seed, **options)
    s.drums({"ride": "x.xxx.", "pedal": "..x.x.", "kick": "g.....", "snare": "....g."}, kit=JAZZ, swing=1 / 3)
    s.bass(UPRIGHT, "RTF | RFA", key)
    s.chords(PIANO, "..x..x | .x..x.", key, low=53, velocity=68, swing=1 / 3)
    s.melody(VIBES, "x-x-x- | x.x.x- | x----- | ..x.x.", key, low=67, swing=1 / 3)
    return s.finish()


def rock_waltz(tempo: Tempo, seed: int, **options: Any) -> Score:
    key = ("Am", "F", "C", "G")
    s = Score((3, 4), tempo, seed, **options)
    s.drums({"kick": "x..... | x...x.", "snare": "..x.x.", "hat": "xoxoxo"})
    s.bass(PICK_BASS, "R.R.F.", key)
    s.chords(OVERDRIVE, "X-x-x-", key, low=40, power=True)
    s.melody(ROCK_ORGAN, "x-x-x- | x-----", key, low=64, velocity=70, volume=80)
    return s.finish()


def ballad(tempo: Tempo, seed: int, *, guitar: bool = False, **options: Any) -> Score:
    key = ("D", "Bm", "G", "A") if guitar else ("C", "Am", "F", "G")
    s = Score((4, 4), tempo, seed, **options)
    s.drums(
        {"kick": "x....... x.x.....", "rim" if guitar else "snare": "....x... ....x...", "hat": "o.o.o.o. o.o.o.o."},
        velocity=85,
    )
    s.bass(FRETLESS if guitar else FINGER_BASS, "R------- F---R---", key, velocity=90)
    if guitar:
        s.arpeggio(NYLON, "0121 3121", key, low=50, velocity=75)
        s.chords(E_PIANO, "x--- x---", key, low=57, velocity=60, volume=80)
    else:
        s.arpeggio(PIANO, "0123 2123", key, low=48, velocity=70)
        s.chords(STRINGS, "x--- ---- ---- ----", key, low=60, velocity=60, volume=80)
    s.melody(VIOLIN if guitar else FLUTE, "x--- x-x- x--- ---- | x-x- x-x- x--- ----", key, low=69, velocity=70)
    return s.finish()


def punk(tempo: Tempo, seed: int, **options: Any) -> Score:
    key = ("A", "E", "F#", "D")
    s = Score((4, 4), tempo, seed, **options)
    s.drums({"kick": "x.x. x.x.", "snare": "..x. ..x.", "hat": "xoxo xoxo"}, kit=POWER)
    s.bass(PICK_BASS, "RRRR RRRR", key)
    s.chords(DISTORTION, "xxxx xxxx", key, low=40, power=True)
    return s.finish()


def dnb(tempo: Tempo, seed: int, **options: Any) -> Score:
    key = ("Fm", "Fm", "Db", "Eb")
    s = Score((4, 4), tempo, seed, **options)
    s.drums(
        {
            "kick": "x... .... ..x. .... | x... .... ..x. ..x.",
            "snare": ".... x..g .g.. x... | .... x..g .g.. x..g",
            "hat": "x.x. x.x. x.x. x.x.",
            "shaker": "gggg gggg gggg gggg",
        },
        fills=False,
    )
    s.bass(SYNTH_BASS2, "R--- ---- ---- F--- | R--- ---- --R- ----", key, low=26)
    s.chords(WARM_PAD, "x--- ---- ---- ----", key, low=56, velocity=60, volume=75)
    s.chords(E_PIANO, ".... ..x. .... .... | x... .... ..x. ....", key, low=60, velocity=70, volume=80)
    return s.finish()


def hiphop(tempo: Tempo, seed: int, **options: Any) -> Score:
    key = ("Am7", "Am7", "Dm7", "E7")
    s = Score((4, 4), tempo, seed, **options)
    groove = {
        "kick": "x... ...x ..x. .... | x... ...x ..x. ..x.",
        "snare": ".... x... .... x...",
        "hat": "x.ox x.ox x.ox x.ox",
    }
    s.drums(groove, swing=1 / 3)
    s.bass(FINGER_BASS, "R--- --R. ..F. .... | R--- --R. ..O. ..A.", key, swing=1 / 3)
    s.chords(E_PIANO, "x--. .... x--. ..x.", key, low=55, velocity=70, swing=1 / 3)
    s.melody(VIBES, "x... .x.. x... .... | .... x.x. x--- ....", key, low=69, velocity=65, swing=1 / 3)
    return s.finish()


def reggae(tempo: Tempo, seed: int, **options: Any) -> Score:
    key = ("G", "C", "G", "D")
    s = Score((4, 4), tempo, seed, **options)
    s.drums({"kick": ".... .... x... ....", "rim": ".... .... x... ....", "hat": "x.o. x.o. x.o. x.o."}, swing=1 / 3)
    s.bass(FINGER_BASS, "..R. R... F..R T... | ..R. R... F..O ..A.", key, low=31)
    s.chords(CLEAN, ".... x... .... x...", key, low=60, velocity=85)  # the skank on 2 and 4
    s.chords(ORGAN, "..x. ..x. ..x. ..x.", key, low=55, velocity=55, volume=70)  # the bubble
    return s.finish()


def breakbeat(tempo: Tempo, seed: int, **options: Any) -> Score:
    key = ("Gm", "Gm", "Eb", "F")
    s = Score((4, 4), tempo, seed, **options)
    s.drums(
        {
            "kick": "x.x. .... ..xx .... | x.x. .... ..x. ..x.",
            "snare": ".... X..g .g.. X..g | .g.. X..g .g.. X...",
            "hat": "x.x. x.x. x.x. x.o.",
        }
    )
    s.bass(SYNTH_BASS, "R..R ..R. ..R. .R.. | R..R ..R. ..F. .A..", key)
    s.chords(WARM_PAD, "x--- ---- ---- ----", key, low=55, velocity=60, volume=75)
    s.chords(PIANO, "x... .... ..x. .... | .... ..x. .... x...", key, low=60, velocity=75)
    return s.finish()


def bossa(tempo: Tempo, seed: int, **options: Any) -> Score:
    key = ("Dm9", "G7", "Cmaj7", "Cmaj7")
    s = Score((4, 4), tempo, seed, **options)
    # The bossa clave on the rim over two bars; bass drum on 1 and 3 with their pick-ups.
    s.drums({"rim": "x..x ..x. | ..x. .x..", "kick": "x..x x..x", "cabasa": "xoxo xoxo"}, velocity=85, fills=False)
    s.bass(UPRIGHT, "R..F F..R", key, low=31)
    s.chords(NYLON, "x.x. .x.x | .x.. x.x.", key, low=52, velocity=70)
    s.melody(FLUTE, "x--- x.x. | x--- ---- | .x.x x--- | x--- ----", key, low=69, velocity=70)
    return s.finish()


def piano_arpeggio(tempo: Tempo, seed: int, **options: Any) -> Score:
    key = ("Am", "F", "C", "E7")
    s = Score((4, 4), tempo, seed, **options)
    s.arpeggio(PIANO, "0123 4321 0123 4321", key, low=57, velocity=70)
    s.bass(PIANO, "R--- ---- O--- ----", key, low=36, velocity=75, volume=90)
    return s.finish()


def piano_chords(tempo: Tempo, seed: int, **options: Any) -> Score:
    key = ("C", "G", "Am", "Em", "F", "C", "F", "G")
    s = Score((4, 4), tempo, seed, **options)
    s.chords(PIANO, "X-x- x-x-", key, low=55, velocity=70)
    s.bass(PIANO, "R--- R--- | R--- F---", key, low=36, velocity=80, volume=90)
    s.melody(BRIGHT_PIANO, "x-x- x.x. | x--- x-x- | x-x- x-x- | x--- ----", key, low=72, velocity=80)
    return s.finish()


def strings(tempo: Tempo, seed: int, **options: Any) -> Score:
    key = ("D", "A", "Bm", "F#m", "G", "D", "G", "A")
    s = Score((4, 4), tempo, seed, **options)
    s.bass(PIZZICATO, "R.F. R.F.", key, low=36, velocity=95)
    s.bass(CELLO, "R--- F---", key, low=43, velocity=70, volume=85)
    s.chords(STRINGS, "x--- x---", key, low=55, velocity=65, volume=85)
    s.melody(VIOLIN, "x.x. x.x. | x-x- x--- | x.x. x-x- | x--- ----", key, low=69, velocity=85)
    return s.finish()


def chamber(tempo: Tempo, seed: int, **options: Any) -> Score:
    key = ("F", "C", "Dm", "Bb", "F", "Gm", "C7", "F")
    s = Score((4, 4), tempo, seed, **options)
    s.bass(BASSOON, "RFRF", key, low=34, velocity=85)
    s.arpeggio(CLARINET, "0121 0121", key, low=55, velocity=70, volume=85)
    s.chords(STRINGS, "x--- ----", key, low=53, velocity=55, volume=75)
    s.melody(FLUTE, "x-x- xxx- | x--- x-x- | xxxx x-x- | x--- ----", key, low=72, velocity=80)
    return s.finish()


def sixeight_ballad(tempo: Tempo, seed: int, **options: Any) -> Score:
    key = ("G", "Em", "C", "D")
    s = Score((6, 8), tempo, seed, **options)
    s.drums({"kick": "x..... | x....x", "snare": "...x..", "hat": "xoo xoo"}, velocity=85)
    s.bass(FINGER_BASS, "R--F--", key)
    s.arpeggio(PIANO, "012321", key, low=55, velocity=70)
    s.chords(STRINGS, "x-----", key, low=60, velocity=55, volume=75)
    return s.finish()


def jig(tempo: Tempo, seed: int, **options: Any) -> Score:
    key = ("D", "G", "D", "A")
    s = Score((6, 8), tempo, seed, **options)
    s.drums({"floor": "x.ox.o", "kick": "x..x..", "tamb": "..x..x"}, velocity=85)
    s.bass(UPRIGHT, "R..F..", key, low=31)
    s.chords(STEEL, "x.xx.x", key, low=52, velocity=70)
    s.melody(WHISTLE, "xxxxxx | x-xx-x | xxxxxx | x--x--", key, low=74, velocity=75)
    return s.finish()


def five_four(tempo: Tempo, seed: int, *, jazz: bool = False, **options: Any) -> Score:
    key = ("Ebm", "Bbm7") if jazz else ("Em", "Em", "C", "D")
    s = Score((5, 4), tempo, seed, **options)
    if jazz:
        s.drums({"ride": "x.xx.xx.x.", "pedal": "..x...x...", "kick": "x.....x..."}, kit=JAZZ, swing=1 / 3)
        s.chords(PIANO, "x..x..x.x.", key, low=53, velocity=70, swing=1 / 3)
        s.bass(UPRIGHT, "R.F.O.F.R.", key, swing=1 / 3)
        s.melody(SAX, "x-x-x---x. | x--------- | x.x.x.x-x- | x---------", key, low=63, swing=1 / 3)
    else:
        s.drums({"kick": "x.....x...", "snare": "..x.....x.", "hat": "xoxoxoxoxo"})
        s.bass(PICK_BASS, "R.R.R.F.F.", key)
        s.chords(CLEAN, "x-x-x-x-x-", key, low=52, velocity=75)
        s.chords(PIANO, "x----x----", key, low=60, velocity=60, volume=80)
    return s.finish()


def ska(tempo: Tempo, seed: int, *, punk: bool = False, **options: Any) -> Score:
    key = ("E", "C#m", "A", "B") if punk else ("C", "Am", "F", "G")
    s = Score((4, 4), tempo, seed, **options)
    if punk:
        s.drums(
            {"kick": "x... ..x. x... ....", "snare": ".... x... .... x...", "hat": "x.x. x.x. x.x. x.x."}, kit=POWER
        )
        s.bass(PICK_BASS, "R.R. R.R. R.R. R.R.", key)
        s.chords(DISTORTION, "..x. ..x. ..x. ..x.", key, low=52, velocity=90)  # the upstrokes, distorted
        s.melody(TRUMPET, "x-x- x--- ..x- x-x- | x--- ---- x.x. x---", key, low=67, velocity=90, volume=85)
    else:
        s.drums({"kick": "x... .... x... ....", "rim": ".... x... .... x...", "open": "..x. ..x. ..x. ..x."})
        s.bass(UPRIGHT, "R... T... F... A...", key, low=31)
        s.chords(CLEAN, "..x. ..x. ..x. ..x.", key, low=60, velocity=90)  # upstrokes on the off-beats
        s.chords(PIANO, "..x. ..x. ..x. ..x.", key, low=55, velocity=65, volume=80)
        s.melody(TENOR_SAX, "x.x. x--- x.x. x--- | x-x- x-x- x--- ----", key, low=62, velocity=85)
    return s.finish()


def metal(tempo: Tempo, seed: int, *, thrash: bool = False, **options: Any) -> Score:
    s = Score((4, 4), tempo, seed, **options)
    if thrash:
        key = ("E", "E", "F", "G")
        # Two bars of the skank beat (kick on the beats, snare on every off-beat), two of a plain backbeat.
        groove = {
            "kick": "x.x.x.x. | x.x.x.x. | xxxxxxxx | x.x.x.xx",
            "snare": ".X.X.X.X | .X.X.X.X | ..X...X. | ..X...X.",
            "hat": "x.x.x.x.",
        }
        s.drums(groove, kit=POWER)
        s.bass(PICK_BASS, "RRRRRRRR", key)
        s.chords(DISTORTION, "XxxxXxxx | XxxxXxXx", key, low=40, power=True)
    else:
        key = ("Em", "Em", "C", "D")
        groove = {"kick": "xxxx xxxx xxxx xxxx", "snare": ".... X... .... X...", "ride": "x... x... x... x..."}
        s.drums(groove, kit=POWER)  # double kick in 16ths
        s.bass(PICK_BASS, "R.R. R.R. R.R. R.R.", key)
        s.chords(DISTORTION, "Xooo xooo Xooo xoxo", key, low=40, power=True)  # palm-muted chugs
        s.chords(STRINGS, "x--- ---- ---- ----", key, low=60, velocity=60, volume=75)
    return s.finish()


def country(tempo: Tempo, seed: int, *, bluegrass: bool = False, **options: Any) -> Score:
    s = Score((4, 4), tempo, seed, **options)
    if bluegrass:  # the two-beat: bass on 1 and 3, a brushed snare on 2 and 4, a banjo rolling 16ths
        key = ("G", "C", "G", "D")
        s.drums({"snare": ".... x... .... x...", "kick": "g... .... g... ...."}, kit=BRUSH, velocity=90)
        s.bass(UPRIGHT, "R... .... F... ....", key, low=31)
        s.arpeggio(BANJO, "0130 1301 3013 0130", key, low=55, velocity=75, volume=85)
        s.chords(STEEL, ".... x... .... x...", key, low=52, velocity=80, volume=85)  # the mandolin's chop
        s.melody(FIDDLE, "x.x. x.x. x-x- x.x. | x--- x.x. x-x- x---", key, low=67, velocity=80)
    else:  # the train beat: brushed 16ths on the snare, accents on 2 and 4
        key = ("A", "A", "D", "E")
        s.drums({"snare": "ggog Xggg ggog Xggg", "kick": "x... .... x... ...."}, kit=BRUSH, velocity=95)
        s.bass(FINGER_BASS, "R... .... F... ....| R... .... F... A...", key)
        s.chords(STEEL, "x.xx .xx. x.xx .xx.", key, low=52, velocity=70)
        s.melody(HARMONICA, "x-x- x--- x.x. x--- | ..x. x-x- x--- ----", key, low=64, velocity=80)
    return s.finish()


def disco(tempo: Tempo, seed: int, **options: Any) -> Score:
    key = ("Am7", "Am7", "Dm7", "G")
    s = Score((4, 4), tempo, seed, **options)
    groove = {
        "kick": "x... x... x... x...",
        "snare": ".... x... .... x...",
        "open": "..x. ..x. ..x. ..x.",
        "hat": "gg.g gg.g gg.g gg.g",  # never with the open hat: the closed one would choke it
    }
    s.drums(groove)
    s.bass(FINGER_BASS, "R.O. R.O. R.O. R.O.", key)  # octaves in 8ths
    s.chords(MUTED, ".x.x .x.x .x.x .x.x", key, low=60, velocity=70, volume=80)
    s.chords(STRINGS, "x--- ---- x--- --x-", key, low=57, velocity=70, volume=85)
    s.melody(BRASS, ".... .... x.x. x--- | .... .... x-x- x---", key, low=67, velocity=85, volume=85)
    return s.finish()


def motown(tempo: Tempo, seed: int, **options: Any) -> Score:
    key = ("C", "Am", "F", "G")
    s = Score((4, 4), tempo, seed, **options)
    s.drums(
        {
            "snare": "x... x... x... x...",  # on every beat, doubled by the tambourine
            "tamb": "x... x... x... x...",
            "kick": "x... ..x. x... ..x.",
            "hat": "x.x. x.x. x.x. x.x.",
        }
    )
    s.bass(FINGER_BASS, "R..R ..F. R..T ..A.", key)
    s.chords(PIANO, "x... x... x... x...", key, low=55, velocity=75)
    s.melody(TENOR_SAX, "x-x- x--- x.x. x--- | x--- x-x- x--- ----", key, low=60, velocity=80)
    return s.finish()


def dubstep(tempo: Tempo, seed: int, **options: Any) -> Score:
    key = ("Fm", "Fm", "Db", "Eb")
    s = Score((4, 4), tempo, seed, **options)
    s.drums(
        {
            "kick": "x... .... .... .... | x... .... .... ..x.",
            "snare": ".... .... X... ....",  # half time: the snare on 3
            "clap": ".... .... x... ....",
            "hat": "x.x. x.x. x.x. x.xx",
        },
        kit=ELECTRONIC,
        fills=False,
    )
    s.bass(SYNTH_BASS2, "R-RR R--- RRRR R-r- | R--- RR-R r-R- RRRR", key, low=24, velocity=110)  # the wobble
    s.chords(WARM_PAD, "x--- ---- ---- ----", key, low=56, velocity=60, volume=75)
    s.arpeggio(SAW_LEAD, "0... .... 2... 1... | .... .... 0... ....", key, low=68, velocity=65, volume=70)
    return s.finish()


def lofi(tempo: Tempo, seed: int, **options: Any) -> Score:
    key = ("Fmaj7", "Em7", "Dm7", "Cmaj7")
    s = Score((4, 4), tempo, seed, **options)
    groove = {
        "kick": "x... ...x ..x. .... | x... .... ..x. ..x.",
        "rim": ".... x... .... x...",
        "hat": "x.o. x.o. x.o. x.oo",
    }
    s.drums(groove, velocity=75, swing=0.3, fills=False)
    s.bass(FINGER_BASS, "R--- ---. ..R- .... | R--- ---. ..F. ..A.", key, velocity=80, swing=0.3)
    s.chords(E_PIANO, "x--- ---- .x-- ----", key, low=53, velocity=60, swing=0.3)
    s.melody(VIBES, ".... x.x. x--- .... | .... .... .x.x x---", key, low=69, velocity=55, volume=80, swing=0.3)
    return s.finish()


def samba(tempo: Tempo, seed: int, **options: Any) -> Score:
    key = ("C", "C", "A7", "A7", "Dm", "G7", "C", "G7")
    s = Score((2, 4), tempo, seed, **options)
    groove = {
        "floor": "o... X...",  # the surdo: muted on 1, open and loud on 2
        "shaker": "xoox xoox",  # the ganzá
        "snare": "gogg gogx",  # the caixa
        "rim": "x.xx .xx. | x.xx .x.x",  # the tamborim
        "agogo": "x.x. ..x. | .x.x x...",
    }
    s.drums(groove, velocity=90, fills=False)
    s.bass(FINGER_BASS, "R..F F...", key, low=31)
    s.chords(NYLON, "x.xx .x.x | .xx. x.x.", key, low=55, velocity=75)  # the cavaquinho's part, on guitar
    s.melody(FLUTE, "x.xx .x.x | x--- x.x. | .xx. x.x- | x--- ----", key, low=72, velocity=80)
    return s.finish()


def afrobeat(tempo: Tempo, seed: int, **options: Any) -> Score:
    key = ("Dm7", "Dm7", "Gm7", "Dm7")
    s = Score((4, 4), tempo, seed, **options)
    groove = {
        "kick": "x... ..x. x... .x.. | x... ..x. x... ..x.",
        "snare": "..g. x.g. .g.. x.g.",
        "hat": "xoxo xoxo xoxo xoxo",
        "cabasa": "x.x. x.x. x.x. x.x.",  # the shekere
        "lowconga": "..x. ...x ..xx ....",
    }
    s.drums(groove, velocity=95)
    s.bass(FINGER_BASS, "R..R ..F. .O.. V.R. | R..R ..F. .O.. T.A.", key)
    s.chords(MUTED, "x.xx .x.x x.xx .x.x", key, low=60, velocity=75, volume=80)
    s.arpeggio(CLEAN, "..0. 1..2 ..0. 1..2", key, low=62, velocity=70, volume=75)
    s.chords(BRASS, "x.x. .... x--- .... | .... .... .x.x x---", key, low=60, velocity=85, volume=85)
    return s.finish()


def gospel(tempo: Tempo, seed: int, **options: Any) -> Score:
    key = ("C", "F", "C", "G7")
    s = Score((12, 8), tempo, seed, **options)
    s.drums({"kick": "x.. ... x.. ..x", "snare": "... X.. ... X..", "hat": "xoo xoo xoo xoo"}, velocity=85)
    s.bass(FINGER_BASS, "R-- --- F-- --A", key)
    s.chords(PIANO, "Xxx xxx Xxx xxx", key, low=55, velocity=70)  # triplet chords
    s.chords(ORGAN, "x-- --- x-- ---", key, low=52, velocity=60, volume=75)
    s.melody(CHOIR, "x-- --- x-x --- | x-- x-- x-- ---", key, low=64, velocity=75, volume=85)
    return s.finish()


def shuffle_12_8(tempo: Tempo, seed: int, **options: Any) -> Score:
    key = ("G7", "C7", "G7", "G7", "C7", "C7", "G7", "G7", "D7", "C7", "G7", "D7")
    s = Score((12, 8), tempo, seed, **options)
    # A Chicago shuffle: the bass drum feathered on every beat.
    s.drums({"kick": "x.. o.. x.. o..", "snare": "... x.. ... x.g", "ride": "x.o x.o x.o x.o"})
    s.bass(FINGER_BASS, "R.t F.s O.s F.t", key)  # the boogie line, long-short, the short note softer
    s.chords(CLEAN, "x.o x.o x.o x.o", key, low=55, velocity=75)  # the comp long-short too
    s.melody(HARMONICA, "x-- x.x x-- --- | x.x x-- --- ..x", key, low=62, velocity=80)
    return s.finish()


def oompah(tempo: Tempo, seed: int, *, march: bool = False, **options: Any) -> Score:
    """2/4 with the bass on both beats and the chords between: a march, or a polka."""
    s = Score((2, 4), tempo, seed, **options)
    if march:
        key = ("Bb", "Bb", "F7", "F7", "Bb", "Eb", "F7", "Bb")
        snare = "x.xx x.x. | xxxx x... | x.xx x.x. | x.x. xxxx"
        s.drums({"kick": "x... x...", "snare": snare, "crash": "x... .... | ........"}, fills=False)
        s.bass(TUBA, "R... F...", key, low=29)
        s.chords(BRASS, "..x. ..x.", key, low=58, velocity=75)
        s.melody(PICCOLO, "x.xx x.x. | x--- x.x. | xxxx x.x. | x--- ----", key, low=74, velocity=80, volume=85)
    else:
        key = ("F", "C7", "C7", "F", "F", "Bb", "C7", "F")
        s.drums({"kick": "x... x...", "snare": "..x. ..x."}, velocity=90, fills=False)
        s.bass(TUBA, "R... F...", key, low=29)
        s.chords(ACCORDION, "..x. ..x.", key, low=55, velocity=75)
        s.melody(CLARINET, "xxxx x.x. | x.x. x--- | xxxx xxxx | x.x. x...", key, low=67, velocity=80)
    return s.finish()


def rnb(tempo: Tempo, seed: int, *, neo_soul: bool = False, **options: Any) -> Score:
    s = Score((4, 4), tempo, seed, **options)
    if neo_soul:  # swung 16ths, a late snare ghost, chords pushed off the beat
        key = ("Ebmaj7", "Dm7", "Gm9", "C9")
        groove = {
            "kick": "x..x ...x ..x. .... | x... ..x. ..x. .x..",
            "snare": ".... x..g .g.. x..g",
            "hat": "xgxg xgxg xgxg xgxg",
        }
        s.drums(groove, velocity=90, swing=0.3, fills=False)
        s.bass(FINGER_BASS, "R..R ..T. .F.. R.A. | R--- ..R. .F.. O.A.", key, swing=0.3)
        s.chords(E_PIANO, "x--. ..x- ...x --.. | .x-- ..x. x--- ----", key, low=53, velocity=70, swing=0.3)
        s.melody(SAX, ".... x.x. x--- .... | x.x. .x.. x--- ----", key, low=63, velocity=70, volume=85, swing=0.3)
    else:  # a ballad with 16th hats
        key = ("Ebmaj7", "Cm7", "Fm7", "Bb7")
        groove = {
            "kick": "x... ...x ..x. .... | x... .... x.x. ...x",
            "snare": ".... x... .... x...",
            "hat": "xoxo xoxo xoxo xoxo",
        }
        s.drums(groove, kit=TR808, velocity=90, fills=False)
        s.bass(FRETLESS, "R--- ---R ..F- ---- | R--- ---- R-.. .A..", key)
        s.chords(E_PIANO, "x--- ---- x--- ----", key, low=55, velocity=65)
        s.chords(STRINGS, "x--- ---- ---- ----", key, low=60, velocity=55, volume=75)
        s.melody(SAX, "x--- x.x. x--- ---- | x.x. x-x- x--- ----", key, low=63, velocity=75)
    return s.finish()


def synth_pop(tempo: Tempo, seed: int, *, new_wave: bool = False, **options: Any) -> Score:
    s = Score((4, 4), tempo, seed, **options)
    if new_wave:
        key = ("D", "Bm", "G", "A")
        s.drums({"kick": "x... x... x... x...", "snare": ".... x... .... x...", "hat": "x.x. x.x. x.x. x.x."})
        s.bass(PICK_BASS, "R.R. R.R. R.R. R.O.", key)
        s.chords(CLEAN, "x.x. x.x. x.x. x.x.", key, low=55, velocity=70)
        s.melody(SAW_LEAD, "x-x- x--- x-x- x-x- | x--- ---- x.x. x---", key, low=67, velocity=75, volume=80)
    else:
        key = ("Am", "F", "C", "G")
        groove = {"kick": "x... .... x.x. ....", "clap": ".... x... .... x...", "hat": "x.x. x.x. x.x. x.x."}
        s.drums(groove, kit=ELECTRONIC)
        s.bass(SYNTH_BASS, "R.R. R.R. R.R. R.R.", key)  # 8th-note bass
        s.chords(POLY_PAD, "x--- ---- ---- ----", key, low=57, velocity=65, volume=80)
        s.arpeggio(SQUARE_LEAD, "0.1. 2.1. 0.1. 2.3.", key, low=64, velocity=65, volume=75)
    return s.finish()


def garage(tempo: Tempo, seed: int, **options: Any) -> Score:
    key = ("Fm7", "Bbm7", "Ebmaj7", "C7")
    s = Score((4, 4), tempo, seed, **options)
    groove = {
        "kick": "x... .... ..x. .... | x... .... .x.. ..x.",  # 2-step: no kick on 3
        "snare": ".... x... .... x...",
        "rim": "..x. .... .x.. ..x.",
        "hat": "gxgx gxgx gxgx gxgx",
    }
    s.drums(groove, kit=ELECTRONIC, swing=0.25, fills=False)
    s.bass(SYNTH_BASS, "R... ..R. ..R. .R.. | R-.. ..R. .R.. ..O.", key, swing=0.25)
    s.chords(PERC_ORGAN, ".x.. ..x. .... x... | .... .x.. ..x. ....", key, low=58, velocity=75, swing=0.25)
    s.chords(WARM_PAD, "x--- ---- ---- ----", key, low=55, velocity=55, volume=70)
    return s.finish()


def jungle(tempo: Tempo, seed: int, **options: Any) -> Score:
    key = ("Am", "Am", "F", "G")
    s = Score((4, 4), tempo, seed, **options)
    groove = {  # a break chopped four ways, the last bar into rolls
        "kick": "x.x. .... ..xx .... | x.x. .... ..x. .... | x.x. .... ..xx .... | x... ..x. ..x. ....",
        "snare": ".... x..x .x.. x..x | .... x..x .x.. x... | .... x..x .x.. x..x | .x.. x.x. x.xx x.xx",
        "ride": "x.x. x.x. x.x. x.x.",
    }
    s.drums(groove, fills=False)
    s.bass(SYNTH_BASS2, "R--- ---- ---- ---- | R--- ---- F--- ----", key, low=26, velocity=110)
    s.chords(WARM_PAD, "x--- ---- ---- ----", key, low=57, velocity=60, volume=75)
    s.chords(E_PIANO, ".... x... .... x...", key, low=60, velocity=65, volume=75)
    return s.finish()


def salsa(tempo: Tempo, seed: int, **options: Any) -> Score:
    # Salsa is notated in cut time, but dancers step on every quarter (1 2 3, 5 6 7) and the bell marks
    # it: the quarter, about 180 here, is the beat people tap.
    key = ("C", "F", "G7", "F")
    s = Score((4, 4), tempo, seed, **options)
    groove = {
        "claves": "x..x..x. | ..x.x...",  # son clave, 3-2
        "cowbell": "X.x.X.x.",
        "conga": "..x.....",  # the tumbao: slap on 2, open tones on 4 and its "and"
        "openconga": "......xx",
        "guiro": "x.xxx.xx",
    }
    s.drums(groove, velocity=90, fills=False)
    s.bass(FRETLESS, "...R..F-", key, low=31)  # the anticipated tumbao bass, on the "and" of 2 and on 4
    s.arpeggio(PIANO, "0.21.02. | 1.20.1.2", key, low=60, velocity=75)  # the montuno
    s.melody(TRUMPET, "x.x.x-.. | ..x.x-x- | x---.x.x | x-------", key, low=67, velocity=85, volume=90)
    return s.finish()


def chacha(tempo: Tempo, seed: int, **options: Any) -> Score:
    # Dancers step 2, 3, 4-and-1: the quarter.
    key = ("Dm7", "G7", "C", "C")
    s = Score((4, 4), tempo, seed, **options)
    groove = {
        "cowbell": "x.x.x.x.",
        "guiro": "x.xxx.xx",
        "conga": "..x.....",
        "openconga": "......xx",
        "timbale": "......xx | x.......",  # cha-cha-chá on 4, its "and" and 1
    }
    s.drums(groove, velocity=90, fills=False)
    s.bass(UPRIGHT, "R...F-F.", key, low=31)
    s.arpeggio(PIANO, "0.2.1.20", key, low=60, velocity=70)
    s.chords(STRINGS, "x-x-x-xx", key, low=60, velocity=60, volume=75)
    s.melody(FLUTE, "x-x-x--- | x.x.x-x- | x---x-x- | x-------", key, low=72, velocity=80)
    return s.finish()


def fingerpicked(tempo: Tempo, seed: int, **options: Any) -> Score:
    key = ("C", "Am", "F", "G")
    s = Score((4, 4), tempo, seed, **options)
    s.bass(STEEL, "R... F... R... F...", key, low=40, velocity=85, volume=100)  # the thumb, alternating
    s.arpeggio(STEEL, "3.2. 1.3. ..2. 1.3.", key, low=52, velocity=70)  # the fingers, between
    return s.finish()


def string_quartet(tempo: Tempo, seed: int, **options: Any) -> Score:
    key = ("D", "A", "Bm", "F#m", "G", "D", "G", "A")
    s = Score((4, 4), tempo, seed, **options)
    s.bass(CELLO, "R------- | R---F---", key, low=38, velocity=75, volume=90)
    s.arpeggio(VIOLA, "1---2---", key, low=50, velocity=65, volume=80)
    s.arpeggio(VIOLIN, "2---1-2-", key, low=60, velocity=65, volume=80)
    s.melody(VIOLIN, "x-x-x-x- | x---x--- | x-xxx-x- | x-------", key, low=69, velocity=80)
    return s.finish()


def ragtime(tempo: Tempo, seed: int, **options: Any) -> Score:
    # Ragtime is written in 2/4 and played "not fast" (quarter about 80–100): the stride left hand's bass
    # notes fall on the quarters, its chords on the 8ths between, so listeners tap the quarter.
    key = ("C", "C", "G7", "G7", "C", "F", "C", "G7")
    s = Score((2, 4), tempo, seed, **options)
    s.bass(PIANO, "R... F...", key, low=36, velocity=95, volume=95)  # the bass in octaves, heavier than the chords
    s.bass(PIANO, "R... F...", key, low=48, velocity=85, volume=95)
    s.chords(PIANO, "..x. ..x.", key, low=52, velocity=60)
    s.melody(PIANO, "x.xx .x.x | xx.x x.x- | .xx. x.x. | x--- x...", key, low=67, velocity=85)
    return s.finish()


def piano_waltz(tempo: Tempo, seed: int, **options: Any) -> Score:
    key = ("Am", "E7", "E7", "Am", "Dm", "Am", "E7", "Am")
    s = Score((3, 4), tempo, seed, **options)
    s.bass(PIANO, "R..", key, low=36, velocity=80, volume=95)
    s.chords(PIANO, ".xx", key, low=53, velocity=60)
    s.melody(PIANO, "x-x-x- | x----- | x.x.x. | x---x-", key, low=72, velocity=80)
    return s.finish()


DOUBLE_TIME = {  # the rock beat twice as fast: kick on every beat, snare on every off-beat
    "kick": "x... x... x... x...",
    "snare": "..x. ..x. ..x. ..x.",
    "hat": "x.x. x.x. x.x. x.x.",
}


def double_time(tempo: Tempo, seed: int, *, section: range = range(6, 10), **options: Any) -> Score:
    """A rock song whose drums go double-time for `section`; the notated quarter stays the beat."""
    key = ("A", "F#m", "D", "E")
    s = Score((4, 4), tempo, seed, **options)
    s.drums(ROCK_BEAT, bars=range(section.start))
    s.drums(DOUBLE_TIME, bars=section)
    s.drums(ROCK_BEAT, bars=range(section.stop, s.bars))
    s.bass(PICK_BASS, "R.R. R.R. R.R. R.R.", key)
    s.chords(OVERDRIVE, "X-x- x-x- X-x- x-x-", key, low=40, power=True)
    s.chords(PIANO, "x--- x--- x--- x---", key, low=60, velocity=65, volume=80)
    return s.finish()


def drum_break(tempo: Tempo, seed: int, *, rest: range = range(6, 10), **options: Any) -> Score:
    """A soul groove whose drums stop for `rest` while the band plays on."""
    key = ("Gm7", "C9", "Gm7", "C9")
    s = Score((4, 4), tempo, seed, **options)
    groove = {"kick": "x..x ..x. ..x. ....", "snare": ".... x..g .... x...", "hat": "x.x. x.x. x.x. x.xo"}
    s.drums(groove, bars=range(rest.start))
    s.drums(groove, bars=range(rest.stop, s.bars))
    s.bass(FINGER_BASS, "R..R ..F. R... .TA.", key)
    s.chords(E_PIANO, "x... ..x. .x.. x...", key, low=55, velocity=75)
    s.melody(BRASS, "x.x. x--- .... .... | .... x.x. x--- ....", key, low=65, velocity=85, volume=85)
    return s.finish()


@dataclass(frozen=True)
class Spec:
    """How to compose one piece, and which half of the corpus it belongs to."""

    name: str
    style: str
    split: str  # "tune" or "report"
    compose: Callable[[], Score]


# Pairs of similar pieces, one in each half.
SPECS = [
    Spec("rock-100", "rock", "tune", partial(rock, 100, 1)),
    Spec("rock-128", "rock", "report", partial(rock, 128, 2, key=("A", "G", "D", "A"), guitar=DISTORTION)),
    Spec("rock-140", "rock", "tune", partial(rock, 140, 3, key=("D", "C", "G", "D"))),
    Spec("rock-75", "slow rock", "report", partial(slow_rock, 75, 4)),
    Spec("techno-130", "techno four-on-the-floor", "tune", partial(techno, 130, 5)),
    Spec("house-124", "house four-on-the-floor", "report", partial(house, 124, 6)),
    Spec("funk-100", "syncopated funk", "tune", partial(funk, 100, 7)),
    Spec("funk-108", "syncopated funk", "report", partial(funk, 108, 8, clav=True)),
    Spec("shuffle-92", "blues shuffle", "tune", partial(shuffle, 92, 9)),
    Spec("swing-144", "jazz swing", "report", partial(swing, 144, 10)),
    Spec("halftime-140", "half-time rock", "tune", partial(halftime, 140, 11)),
    Spec("trap-140", "trap", "report", partial(trap, 140, 12)),
    Spec("waltz-fast-180", "fast waltz", "tune", partial(waltz, 180, 13, fast=True)),
    Spec("waltz-slow-90", "slow waltz", "report", partial(waltz, 90, 14, reverb=0.35)),
    Spec("jazz-waltz-132", "jazz waltz", "tune", partial(jazz_waltz, 132, 15)),
    Spec("rock-3-4-112", "3/4 rock", "report", partial(rock_waltz, 112, 16)),
    Spec("ballad-70", "ballad", "tune", partial(ballad, 70, 17, guitar=True, reverb=0.4)),
    Spec("ballad-64", "ballad", "report", partial(ballad, 64, 18, reverb=0.45)),
    Spec("dnb-174", "drum and bass", "tune", partial(dnb, 174, 19)),
    Spec("punk-190", "punk", "report", partial(punk, 190, 20)),
    Spec("hiphop-90", "swung hip-hop", "tune", partial(hiphop, 90, 21)),
    Spec("reggae-74", "reggae one-drop", "report", partial(reggae, 74, 22)),
    Spec("breakbeat-130", "breakbeat", "tune", partial(breakbeat, 130, 23)),
    Spec("bossa-136", "bossa nova", "report", partial(bossa, 136, 24)),
    Spec("piano-arpeggio-76", "solo piano", "tune", partial(piano_arpeggio, 76, 25, reverb=0.7)),
    Spec("piano-chords-86", "solo piano", "report", partial(piano_chords, 86, 26, reverb=0.7)),
    Spec("chamber-112", "classical", "tune", partial(chamber, 112, 27, reverb=0.55)),
    Spec("strings-100", "classical", "report", partial(strings, 100, 28, reverb=0.6)),
    Spec("jig-6-8-104", "6/8 jig", "tune", partial(jig, 104, 29)),
    Spec("ballad-6-8-72", "6/8 ballad", "report", partial(sixeight_ballad, 72, 30, reverb=0.3)),
    Spec("five-four-jazz-168", "5/4 jazz", "tune", partial(five_four, 168, 31, jazz=True)),
    Spec("five-four-120", "5/4 rock", "report", partial(five_four, 120, 32)),
    Spec("accelerando-90-140", "accelerando", "tune", partial(rock, ramp(90, 140, 76), 33, seconds=44.0)),
    Spec("ritardando-126-88", "ritardando", "report", partial(pop, ramp(126, 88, 32, after=40), 34, seconds=42.0)),
    Spec("step-132-104", "tempo step", "tune", partial(funk, step(132, 104, 44), 35, seconds=40.0)),
    Spec("step-96-128", "tempo step", "report", partial(pop, step(96, 128, 32), 36, seconds=40.0)),
    Spec("humanised-rock-112", "humanised ±15 ms", "tune", partial(rock, 112, 37, humanize_ms=15.0)),
    Spec("humanised-funk-96", "humanised ±15 ms", "report", partial(funk, 96, 38, humanize_ms=15.0)),
    Spec("drift-pop-108", "tempo drift ±3%", "tune", partial(pop, drift(108, 39), 39, seconds=40.0, tempo_step=0.5)),
    Spec(
        "drift-rock-118", "tempo drift ±3%", "report", partial(rock, drift(118, 40), 40, seconds=40.0, tempo_step=0.5)
    ),
    Spec("fade-in-house-120", "8 s fade-in", "tune", partial(house, 120, 41, fade=8.0, seconds=36.0)),
    Spec("intro-pop-100", "drumless intro", "report", partial(pop, 100, 42, intro_bars=4, seconds=36.0)),
    # Added styles, again in pairs split between the halves.
    Spec("ska-160", "ska", "tune", partial(ska, 160, 43)),
    Spec("ska-punk-176", "ska-punk", "report", partial(ska, 176, 44, punk=True)),
    Spec("thrash-182", "thrash", "tune", partial(metal, 182, 45, thrash=True)),
    Spec("metal-170", "metal double kick", "report", partial(metal, 170, 46)),
    Spec("country-train-110", "country train beat", "tune", partial(country, 110, 47)),
    Spec("bluegrass-120", "bluegrass two-beat", "report", partial(country, 120, 48, bluegrass=True)),
    Spec("motown-100", "Motown", "tune", partial(motown, 100, 49)),
    Spec("disco-118", "disco", "report", partial(disco, 118, 50)),
    Spec("dubstep-140", "dubstep half-time", "tune", partial(dubstep, 140, 51)),
    Spec("lofi-80", "lo-fi hip-hop", "report", partial(lofi, 80, 52, reverb=0.25)),
    Spec("afrobeat-110", "afrobeat", "tune", partial(afrobeat, 110, 53)),
    Spec("samba-2-4-100", "samba", "report", partial(samba, 100, 54)),
    Spec("gospel-12-8-60", "12/8 gospel", "tune", partial(gospel, 60, 55, reverb=0.35)),
    Spec("shuffle-12-8-70", "12/8 shuffle", "report", partial(shuffle_12_8, 70, 56, seconds=32.0)),
    Spec("polka-2-4-124", "polka", "tune", partial(oompah, 124, 57)),
    Spec("march-2-4-116", "march", "report", partial(oompah, 116, 58, march=True)),
    Spec("rnb-ballad-65", "R&B ballad", "tune", partial(rnb, 65, 59, reverb=0.3)),
    Spec("neo-soul-85", "neo-soul", "report", partial(rnb, 85, 60, neo_soul=True)),
    Spec("new-wave-150", "new wave", "tune", partial(synth_pop, 150, 61, new_wave=True)),
    Spec("synth-pop-120", "synth-pop", "report", partial(synth_pop, 120, 62)),
    Spec("garage-2step-132", "UK garage 2-step", "tune", partial(garage, 132, 63)),
    Spec("jungle-165", "jungle", "report", partial(jungle, 165, 64)),
    Spec("cha-cha-120", "cha-cha", "tune", partial(chacha, 120, 65)),
    Spec("salsa-180", "salsa", "report", partial(salsa, 180, 66)),
    Spec("fingerpicked-90", "fingerpicked guitar", "tune", partial(fingerpicked, 90, 67, reverb=0.3)),
    Spec("quartet-80", "string quartet", "report", partial(string_quartet, 80, 68, reverb=0.5)),
    Spec("piano-waltz-150", "piano waltz", "tune", partial(piano_waltz, 150, 69, reverb=0.4)),
    Spec("ragtime-2-4-96", "ragtime", "report", partial(ragtime, 96, 70)),
    Spec("double-time-96", "double-time section", "tune", partial(double_time, 96, 71, seconds=36.0)),
    Spec("break-104", "drumless break", "report", partial(drum_break, 104, 72, seconds=36.0)),
]


VARIANT_MARK = "-at-"  # a variant is named <piece>-at-<its tempo>


def tune_variants() -> list[Spec]:
    """More pieces for tuning only: each steady-tempo tune piece again 10% slower and 10% faster, new seeds.

    Same styles and conventions as the tune half, so a fit sees each style at more than one
    tempo; the report half is never varied nor seen.
    """
    variants = []
    for number, spec in enumerate(SPECS):
        compose = spec.compose
        if spec.split != "tune" or not isinstance(compose, partial) or not isinstance(compose.args[0], int | float):
            continue
        tempo, seed, *rest = compose.args
        for scale in (0.9, 1.1):
            bpm = round(tempo * scale)
            varied = partial(compose.func, bpm, seed + 1000 + 2 * number + (scale > 1), *rest, **compose.keywords)
            variants.append(Spec(f"{spec.name}{VARIANT_MARK}{bpm}", spec.style, "tune", varied))
    return variants


# --- rendering -------------------------------------------------------------------------------------------------


def source_hash() -> str:
    """Names the cache: any change to this file renders the corpus afresh."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def scratch(path: Path) -> Path:
    """A temporary name beside `path` that no other process uses: two builds of one cache must not mix files."""
    return path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")


def synthesize(midi: Path, reverb: bool) -> npt.NDArray[np.float32]:
    """Render `midi` with FluidSynth (chorus off, reverb on or off) to stereo float samples, frames × 2."""
    raw = scratch(midi.with_suffix(".raw"))
    command = ["fluidsynth", "-n", "-i", "-q", "-C", "0", "-R", "1" if reverb else "0", "-g", "0.5", "-r", str(SR)]
    if reverb:  # a hall: long and bright enough to smear onsets
        command += ["-o", "synth.reverb.room-size=0.8", "-o", "synth.reverb.damp=0.2", "-o", "synth.reverb.level=0.9"]
    command += ["-T", "raw", "-O", "float", "-F", str(raw), str(SOUNDFONT), str(midi)]
    subprocess.run(command, check=True, capture_output=True)
    try:
        return np.fromfile(raw, dtype=np.float32).reshape(-1, 2)
    finally:
        raw.unlink()


def write_wav(path: Path, samples: npt.NDArray[np.floating[Any]]) -> None:
    """Write frames × channels samples in -1..1 as 16-bit PCM WAV at `SR`, atomically."""
    pcm = np.clip(np.round(samples * 32767), -32768, 32767).astype("<i2")
    partial_path = scratch(path)
    with wave.open(str(partial_path), "wb") as out:
        out.setnchannels(pcm.shape[1])
        out.setsampwidth(2)
        out.setframerate(SR)
        out.writeframes(pcm.tobytes())
    partial_path.replace(path)


def read_wav(path: Path) -> tuple[FloatArray, int]:
    """A 16-bit PCM WAV as mono float samples, and its sample rate."""
    with wave.open(str(path), "rb") as f:
        pcm = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2").reshape(-1, f.getnchannels())
        return pcm.mean(axis=1) / 32768.0, f.getframerate()


@dataclass(frozen=True)
class RenderJob:
    midi: bytes
    stem: Path  # cache directory / piece name
    seconds: float  # FluidSynth renders until every voice is silent; the piece ends here
    reverb: bool
    formats: tuple[str, ...]


def render(job: RenderJob) -> None:
    """Runs in a worker: MIDI → WAV (normalised to -1 dBFS) → compressed copies; skips what exists."""
    wav = job.stem.with_suffix(".wav")
    if not wav.exists():
        midi = scratch(job.stem.with_suffix(".mid"))
        midi.write_bytes(job.midi)
        audio = synthesize(midi, job.reverb)[: round(job.seconds * SR)]
        midi.replace(job.stem.with_suffix(".mid"))
        audio[-round(0.2 * SR) :] *= np.linspace(1, 0, round(0.2 * SR))[:, None]
        check_render(audio, job.stem.name)
        write_wav(wav, audio * (PEAK / float(np.abs(audio).max())))
    for fmt in job.formats:
        target = job.stem.with_suffix(f".{fmt}")
        if fmt == "wav" or target.exists():
            continue
        partial_path = scratch(target)
        command = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(wav), *ENCODERS[fmt], str(partial_path)]
        subprocess.run(command, check=True)
        partial_path.replace(target)


def check_render(audio: npt.NDArray[np.float32], name: str) -> None:
    """Refuse a render that is silent, or silent for a second or more inside the piece (a broken render)."""
    blocks = np.abs(audio[: audio.shape[0] // 4410 * 4410]).reshape(-1, 4410 * audio.shape[1]).max(axis=1)
    peak = float(blocks.max()) if blocks.size else 0.0
    quiet = blocks[20:-25] < 1e-4 * peak  # 0.1 s blocks, leaving out the first 2 s and the final chord
    runs = np.flatnonzero(np.convolve(quiet, np.ones(10), mode="valid") == 10)
    if peak == 0.0 or runs.size:
        where = f" from {2 + runs[0] / 10:.1f} s" if runs.size else ""
        raise RuntimeError(f"FluidSynth rendered silence for {name}{where}")


def measure_latency(cache_dir: Path) -> dict[str, float]:
    """Seconds from a note's MIDI time to its onset in FluidSynth's output, per probe and overall (median).

    Renders a kick, a snare and a piano note, each four times at times that fall at different
    points of FluidSynth's 64-sample blocks; the onset is where the signal first reaches a tenth
    (-20 dB) of the note's peak. Cached in the corpus directory.
    """
    cached = cache_dir / "latency.json"
    if cached.exists():
        return dict(json.loads(cached.read_text()))
    probes = [(9, DRUMS["kick"], "kick"), (9, DRUMS["snare"], "snare"), (0, 60, "piano")]
    score = Score((4, 4), 120.0, seed=0, seconds=15.0)
    score.programs = {0: PIANO, 9: STANDARD}
    when: list[tuple[str, float]] = []
    for k in range(12):
        channel, pitch, name = probes[k % 3]
        tick = round(float(score.map.ticks_at(1.0 + k + 0.00037 * k)))  # a second apart, 0.37 ms later each time
        score.notes.append((tick, TPB / 2, channel, pitch, 100))
        when.append((name, float(score.map.seconds(tick))))
    midi = scratch(cache_dir / "latency-probe.mid")
    score.to_midi().save(str(midi))
    try:
        audio = synthesize(midi, reverb=False).mean(axis=1)
    finally:
        midi.unlink()
    found: dict[str, list[float]] = {}
    for name, t in when:
        start = round((t - 0.02) * SR)
        window = np.abs(audio[start : start + round(0.25 * SR)])
        onset = start + int(np.argmax(window >= 0.1 * window.max()))
        found.setdefault(name, []).append(onset / SR - t)
    latency = {name: float(np.median(v)) for name, v in found.items()}
    latency["all"] = float(np.median([x for v in found.values() for x in v]))
    partial_path = scratch(cached)
    partial_path.write_text(json.dumps(latency))
    partial_path.replace(cached)
    return latency


# --- the corpus ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class CorpusPiece:
    """One rendered piece and its ground truth (times in seconds of the audio, latency included)."""

    name: str
    style: str
    split: str  # "tune" or "report"
    meter: int  # beats per bar at the annotation level (6/8 → 2)
    time_signature: str  # as notated: "4/4", "3/4", "6/8", "5/4"
    beats: FloatArray
    downbeats: FloatArray
    tempo: float  # median beats per minute of the truth
    tempo_curve: tuple[FloatArray, FloatArray]  # (seconds, BPM) at each tempo change
    duration: float
    latency: float  # the synthesizer's onset latency, already added to the times above
    directory: Path = field(repr=False)

    def path(self, fmt: str = "wav") -> Path:
        """The rendered audio in `fmt` (wav, mp3, ogg or m4a)."""
        return self.directory / f"{self.name}.{fmt}"


def default_cache_dir() -> Path:
    return DEFAULT_CACHE_ROOT / source_hash()


def build_corpus(
    cache_dir: Path | None = None, formats: Sequence[str] = ("wav",), *, variants: bool = False
) -> list[CorpusPiece]:
    """Render whatever is missing (two processes) and return every piece with its truth, in table order.

    With `variants`, the tune half's `tune_variants` follow the table.
    """
    specs = SPECS + tune_variants() if variants else SPECS
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ValueError(f"unknown formats {sorted(unknown)}; choose from {FORMATS}")
    directory = cache_dir or default_cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    latency = measure_latency(directory)["all"]
    scores = {spec.name: spec.compose() for spec in specs}
    jobs = [
        RenderJob(midi_bytes(score), directory / name, end_of_audio(score), score.reverb > 0, tuple(formats))
        for name, score in scores.items()
        if not all((directory / f"{name}.{fmt}").exists() for fmt in formats)
    ]
    if jobs:
        print(f"rendering {len(jobs)} pieces into {directory} …", file=sys.stderr, flush=True)
        with ProcessPoolExecutor(RENDER_WORKERS) as pool:
            list(pool.map(render, jobs))
    pieces = []
    for spec in specs:
        score = scores[spec.name]
        beats = score.beat_times() + latency
        times, bpm = score.tempo_curve()
        with wave.open(str(directory / f"{spec.name}.wav"), "rb") as f:
            duration = f.getnframes() / f.getframerate()
        pieces.append(
            CorpusPiece(
                name=spec.name,
                style=spec.style,
                split=spec.split,
                meter=score.beats_per_bar,
                time_signature=f"{score.numerator}/{score.denominator}",
                beats=beats,
                downbeats=score.downbeat_times() + latency,
                tempo=60.0 / float(np.median(np.diff(beats))),
                tempo_curve=(times + latency, bpm),
                duration=duration,
                latency=latency,
                directory=directory,
            )
        )
    return pieces


def end_of_audio(score: Score) -> float:
    return float(score.map.seconds(score.end_of_track))


def midi_bytes(score: Score) -> bytes:
    buffer = io.BytesIO()
    score.to_midi().save(file=buffer)
    return buffer.getvalue()


# --- a look at the renders -------------------------------------------------------------------------------------


def onset_alignment(samples: FloatArray, sr: int, beats: FloatArray) -> tuple[float, float]:
    """(median offset in seconds, share of beats) of the sharpest level rise within ±35 ms of each truth beat.

    The level is taken in 5.8 ms frames every 1.45 ms; a beat counts when the level rises by
    at least 6 dB across 3 frames there, and the frame's centre is the onset (on isolated
    clicks within 1 ms of where the signal reaches -20 dB of its peak). A check that the truth
    sits on the audio's onsets: about 0 on drums, meaningless where few beats count.
    """
    hop, size = 64, 256
    frames = np.lib.stride_tricks.sliding_window_view(samples, size)[::hop]
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-10)
    rise = np.zeros_like(level)
    rise[3:] = level[3:] - level[:-3]
    centre = (np.arange(level.size) * hop + size / 2) / sr
    offsets = []
    for beat in beats[beats > 0.5]:
        near = np.flatnonzero(np.abs(centre - beat) <= 0.035)
        if near.size and rise[near].max() >= 6.0:
            offsets.append(centre[near[np.argmax(rise[near])]] - beat)
    if not offsets:
        return math.nan, 0.0
    return float(np.median(offsets)), len(offsets) / int(np.sum(beats > 0.5))


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cache", type=Path, help=f"corpus directory (default {DEFAULT_CACHE_ROOT}/<source hash>)")
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated, from wav,mp3,ogg,m4a")
    args = parser.parse_args()
    pieces = build_corpus(args.cache, [f for f in args.formats.split(",") if f])
    latency = measure_latency(pieces[0].directory)
    print(f"corpus: {pieces[0].directory}")
    print(
        "synth onset latency (added to the truth): "
        + ", ".join(f"{name} {1000 * value:.1f} ms" for name, value in latency.items() if name != "all")
        + f"; median {1000 * latency['all']:.1f} ms\n"
    )
    header = f"{'piece':20} {'split':6} {'style':24} {'BPM':>6} {'meter':>5} {'dur s':>6} {'peak':>6} {'rms':>6}"
    print(header + "  onsets vs truth")
    for piece in pieces:
        samples, sr = read_wav(piece.path())
        peak = 20 * np.log10(np.abs(samples).max())
        rms = 10 * np.log10(np.mean(samples**2))
        offset, share = onset_alignment(samples, sr, piece.beats)
        print(
            f"{piece.name:20} {piece.split:6} {piece.style:24} {piece.tempo:6.1f} {piece.time_signature:>5} "
            f"{piece.duration:6.1f} {peak:6.1f} {rms:6.1f}  {1000 * offset:+5.1f} ms on {share:4.0%} of beats"
        )
    total = sum(p.duration for p in pieces)
    print(
        f"\n{len(pieces)} pieces, {total / 60:.1f} minutes; tune {sum(p.split == 'tune' for p in pieces)}, "
        f"report {sum(p.split == 'report' for p in pieces)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
