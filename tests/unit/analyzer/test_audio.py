"""Audio features on synthetic inputs with exactly known answers."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from artdag_cli.demo_media import write_click_track
from services.analyzer.features import AnalysisParams, analyze_file
from tests.unit.analyzer.media import SR, click, low_thump, place, write_wav

PARAMS = AnalysisParams()


@pytest.mark.parametrize("bpm", [90.0, 128.0])
def test_a_click_track_gives_its_tempo_and_beats(tmp_path: Path, bpm: float) -> None:
    path = tmp_path / "click.wav"
    write_click_track(path, bpm=bpm, duration_s=20)
    beats = analyze_file(path, ["beats"], PARAMS)["audio"]["beats"]
    assert beats["tempo"] == pytest.approx(bpm, rel=0.01)
    truth = np.arange(0, 20 - 0.05, 60 / bpm)
    found = np.array(beats["beat_times"])
    assert found.size == truth.size
    assert np.abs(found - truth).max() < 0.010
    assert beats["confidence"] > 0.6
    assert beats["meter"] == 4


def test_tempo_is_an_alias_for_beats(tmp_path: Path) -> None:
    path = tmp_path / "click.wav"
    write_click_track(path, bpm=120, duration_s=8)
    result = analyze_file(path, ["tempo"], PARAMS)
    assert result["features"] == ["beats"]
    assert result["audio"]["beats"]["tempo"] == pytest.approx(120, rel=0.01)
    assert result["video"] is None


@pytest.mark.parametrize("meter", [3, 4])
def test_the_accent_pattern_gives_the_meter_and_downbeats(tmp_path: Path, meter: int) -> None:
    beat = 60 / 100
    times = np.arange(0, 24, beat)
    events = [(t, click(1600, 0.9) if i % meter == 0 else click(1000, 0.4)) for i, t in enumerate(times)]
    path = tmp_path / "accents.wav"
    write_wav(path, [place(24, events)])
    beats = analyze_file(path, ["beats"], PARAMS)["audio"]["beats"]
    assert beats["meter"] == meter
    downbeats = np.array(beats["downbeat_times"])
    assert np.abs(downbeats - times[::meter][: downbeats.size]).max() < 0.02


def test_a_tempo_step_shows_in_the_tempo_curve_within_two_beats(tmp_path: Path) -> None:
    first = np.arange(0, 20, 60 / 100)
    step_at = first[-1] + 60 / 100
    second = step_at + np.arange(0, 20, 60 / 130)
    path = tmp_path / "step.wav"
    write_wav(path, [place(40, [(t, click()) for t in np.concatenate([first, second])])])
    beats = analyze_file(path, ["beats"], PARAMS)["audio"]["beats"]
    times, bpm = np.array(beats["tempo_curve"]["times"]), np.array(beats["tempo_curve"]["bpm"])
    before, after = times < step_at - 2 * 60 / 100, times > step_at + 2 * 60 / 130
    assert np.abs(bpm[before & (times > 1)] - 100).max() < 2
    assert np.abs(bpm[after & (times < 39)] - 130).max() < 2.6
    assert beats["tempo"] == pytest.approx(float(np.median(bpm)))


def test_a_step_after_a_drum_fill_is_followed_beat_for_beat(tmp_path: Path) -> None:
    # A pop groove at 96 (kick on 1, 3 and the "and" of 3, snare on 2 and 4, eighth hats, a strummed
    # guitar on syncopated sixteenths) steps up to 128 after a fill of four toms on the last beat.
    strum = (0, 2, 3, 5, 6)  # sixteenths of each half bar: "x.xx .xx."

    def groove(start: float, bpm: float, bars: int, fill: bool) -> tuple[list[tuple[float, np.ndarray]], float]:
        beat, events = 60 / bpm, []
        for bar in range(bars):
            at = start + 4 * bar * beat
            last = fill and bar == bars - 1
            events += [(at + k * beat, 0.9 * low_thump()) for k in (0, 2, 2.5)]
            events += [(at + k * beat, click(1800, 0.7)) for k in (1, 3) if not (last and k == 3)]
            events += [(at + k * beat / 2, click(7000, 0.25)) for k in range(6 if last else 8)]
            events += [(at + (8 * h + k) * beat / 4, click(1200, 0.3)) for h in (0, 1) for k in strum]
            if last:
                events += [(at + (3 + j / 4) * beat, click(1000 - 180 * j, 0.8)) for j in range(4)]
        return events, start + 4 * bars * beat

    first, step_at = groove(0.0, 96, 8, fill=True)
    second, end = groove(step_at, 128, 8, fill=False)
    path = tmp_path / "fill-step.wav"
    write_wav(path, [place(end + 0.5, first + second)])
    beats = analyze_file(path, ["beats"], PARAMS)["audio"]["beats"]
    truth = np.concatenate([np.arange(32) * 60 / 96, step_at + np.arange(32) * 60 / 128])
    found = np.array(beats["beat_times"])
    # From two and a half beats before the step to three and a half after (bounds between beats).
    lo, hi = step_at - 2.5 * 60 / 96, step_at + 3.5 * 60 / 128
    near_step = (truth > lo) & (truth < hi)
    assert np.abs(found[:, None] - truth[None, near_step]).min(axis=0).max() < 0.05
    window = (found > lo) & (found < hi)
    assert window.sum() == near_step.sum()  # no beat inserted in the fill
    times, bpm = np.array(beats["tempo_curve"]["times"]), np.array(beats["tempo_curve"]["bpm"])
    assert np.abs(bpm[(times > 2) & (times < step_at - 2 * 60 / 96)] / 96 - 1).max() < 0.04
    assert np.abs(bpm[(times > step_at + 60 / 128) & (times < end - 1)] / 128 - 1).max() < 0.04


def test_an_accelerando_is_followed_within_three_percent(tmp_path: Path) -> None:
    def tempo_at(t: float) -> float:
        return 90 + 50 * min(1.0, t / 30)

    times = [0.0]
    while times[-1] < 36:
        times.append(times[-1] + 60 / tempo_at(times[-1] + 30 / tempo_at(times[-1])))
    path = tmp_path / "accelerando.wav"
    write_wav(path, [place(36, [(t, click()) for t in times])])
    curve = analyze_file(path, ["beats"], PARAMS)["audio"]["beats"]["tempo_curve"]
    at, bpm = np.array(curve["times"]), np.array(curve["bpm"])
    inside = (at > 1) & (at < 35)
    truth = np.array([tempo_at(t) for t in at[inside]])
    assert inside.sum() > 50
    assert np.abs(bpm[inside] / truth - 1).max() < 0.03


def test_tone_bursts_give_their_onsets(tmp_path: Path) -> None:
    t = np.arange(int(0.15 * SR)) / SR
    fade = np.minimum(1, np.minimum(t / 0.002, (t[-1] - t) / 0.05))
    burst = 0.5 * np.sin(2 * np.pi * 440 * t) * fade * np.exp(-t * 10)
    truth = np.array([0.5, 1.1, 1.45, 2.3, 2.9, 3.6])
    path = tmp_path / "bursts.wav"
    write_wav(path, [place(4.5, [(when, burst) for when in truth])])
    onsets = analyze_file(path, ["onsets"], PARAMS)["audio"]["onsets"]
    found = np.array(onsets["times"])
    assert found.size == truth.size
    assert np.abs(found - truth).max() < 0.020
    strength = onsets["strength"]
    assert len(strength["times"]) == len(strength["values"])
    assert max(strength["values"]) == pytest.approx(1.0)


def test_energy_is_low_in_silence_and_high_when_loud(tmp_path: Path) -> None:
    t = np.arange(2 * SR) / SR
    signal = np.concatenate([np.zeros(2 * SR), 0.8 * np.sin(2 * np.pi * 300 * t)])
    path = tmp_path / "step.wav"
    write_wav(path, [signal])
    energy = analyze_file(path, ["energy"], PARAMS)["audio"]["energy"]
    times, values = np.array(energy["times"]), np.array(energy["values"])
    assert energy["window_ms"] == 50
    assert times.size == values.size == 80
    assert values[times < 1.9].max() < 0.01
    assert values[times > 2.1].min() > 0.95


def test_a_low_tone_lights_the_bass_band_only(tmp_path: Path) -> None:
    t = np.arange(3 * SR) / SR
    path = tmp_path / "tone.wav"
    write_wav(path, [0.5 * np.sin(2 * np.pi * 100 * t)])
    spectrum = analyze_file(path, ["spectrum"], PARAMS)["audio"]["spectrum"]
    bands = {name: np.array(values) for name, values in spectrum["bands"].items()}
    assert set(bands) == {"bass", "mid", "high"}
    middle = slice(5, -5)
    assert bands["bass"][middle].min() > 0.9
    assert bands["high"][middle].max() < 0.05
    assert bands["mid"][middle].max() < 0.05
    assert spectrum["band_ranges"]["bass"] == [20, 200]


def test_silence_gives_no_beats_rather_than_invented_ones(tmp_path: Path) -> None:
    path = tmp_path / "silence.wav"
    write_wav(path, [np.zeros(5 * SR)])
    audio = analyze_file(path, ["beats", "energy"], PARAMS)["audio"]
    assert audio["beats"]["beat_times"] == []
    assert audio["beats"]["tempo"] is None
    assert audio["beats"]["confidence"] == 0
    assert max(audio["energy"]["values"]) == 0


def test_progress_is_reported_from_zero_to_one(tmp_path: Path) -> None:
    path = tmp_path / "click.wav"
    write_click_track(path, bpm=120, duration_s=4)
    seen: list[float] = []
    analyze_file(path, ["energy"], PARAMS, seen.append)
    assert seen[0] == 0.0
    assert seen[-1] == 1.0
    assert seen == sorted(seen)


def test_a_long_input_streams_in_bounded_memory(tmp_path: Path) -> None:
    block = place(30, [(t, click()) for t in np.arange(0, 30, 0.5)])
    path = tmp_path / "long.wav"
    write_wav(path, (block for _ in range(20)))  # 10 minutes
    tracemalloc.start()
    try:
        result = analyze_file(path, ["beats", "energy", "spectrum", "onsets"], PARAMS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result["duration"] == pytest.approx(600, abs=0.01)
    assert result["audio"]["beats"]["tempo"] == pytest.approx(120, rel=0.01)
    assert peak < 50 * 1024 * 1024, f"peak {peak / 2**20:.1f} MB"


@pytest.mark.parametrize("hint", [60.0, 120.0, 240.0])
def test_a_tempo_hint_picks_the_metrical_level(tmp_path: Path, hint: float) -> None:
    # Eighth-note clicks at 240 per minute, louder every second and fourth: 240, 120 and 60 are all fair levels.
    times = np.arange(0, 24, 60 / 240)
    events = [(t, click(1600, 0.9 if i % 4 == 0 else 0.6 if i % 2 == 0 else 0.3)) for i, t in enumerate(times)]
    path = tmp_path / "levels.wav"
    write_wav(path, [place(24, events)])
    beats = analyze_file(path, ["beats"], AnalysisParams(tempo_hint=hint, tempo_max=300))["audio"]["beats"]
    assert beats["tempo"] == pytest.approx(hint, rel=0.02)
    found = np.array(beats["beat_times"])
    truth = times[:: round(240 / hint)]
    assert np.abs(found[:, None] - truth[None, :]).min(axis=1).max() < 0.02
    candidates = [c["bpm"] for c in beats["tempo_candidates"]]
    assert candidates[0] == beats["tempo"]
    confidences = [c["confidence"] for c in beats["tempo_candidates"]]
    assert len(candidates) == 3 and confidences == sorted(confidences, reverse=True) and sum(confidences) <= 1.001
    assert all(abs(b / hint - 1) > 0.2 and 38 <= b <= 310 for b in candidates[1:])


def test_syncopated_kicks_do_not_pull_the_beats_off_the_snare_and_hats(tmp_path: Path) -> None:
    # Funk at 100: the kick mostly between the beats, the snare on 2 and 4, hats on every eighth.
    beat = 60 / 100
    events = []
    for bar in range(12):
        start = bar * 4 * beat
        events += [(start + k * beat, 0.9 * low_thump()) for k in (0.0, 0.75, 1.5, 2.5, 3.25)]
        events += [(start + k * beat, click(1800, 0.7)) for k in (1, 3)]
        events += [(start + k * beat / 2, click(7000, 0.25)) for k in range(8)]
    path = tmp_path / "funk.wav"
    write_wav(path, [place(12 * 4 * beat + 1, events)])
    beats = analyze_file(path, ["beats"], PARAMS)["audio"]["beats"]
    assert beats["tempo"] == pytest.approx(100, rel=0.02)
    found = np.array(beats["beat_times"])
    truth = np.arange(0, 12 * 4) * beat
    nearest = np.abs(found[:, None] - truth[None, :]).min(axis=1)
    assert np.median(nearest) < 0.02 and found.size >= 40


@pytest.mark.parametrize("seconds", [2.2, 3.0, 4.5])
def test_a_track_of_a_few_beats_gets_a_tempo_curve(tmp_path: Path, seconds: float) -> None:
    path = tmp_path / "short.wav"
    write_click_track(path, bpm=130, duration_s=seconds)
    beats = analyze_file(path, ["beats"], PARAMS)["audio"]["beats"]
    assert beats["tempo"] == pytest.approx(130, rel=0.02)
    assert len(beats["tempo_curve"]["bpm"]) == len(beats["beat_times"]) - 1
    assert all(b == pytest.approx(130, rel=0.03) for b in beats["tempo_curve"]["bpm"])
