"""The contract the analyzer service relies on: names, params, errors, result shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from artdag_cli.demo_media import write_click_track, write_test_clip
from artdag_common.errors import InvalidInputError, InvalidMediaError
from services.analyzer.features import (
    ANALYZER_VERSION,
    AUDIO_FEATURES,
    VIDEO_FEATURES,
    AnalysisParams,
    analyze_file,
)
from tests.unit.analyzer.media import solid, write_video


def test_feature_names() -> None:
    assert {"beats", "tempo", "energy", "spectrum", "onsets"} == AUDIO_FEATURES
    assert {"metadata", "scene_changes", "motion"} == VIDEO_FEATURES
    assert ANALYZER_VERSION


def test_an_unknown_feature_is_invalid_input(tmp_path: Path) -> None:
    path = tmp_path / "click.wav"
    write_click_track(path, bpm=120, duration_s=1)
    with pytest.raises(InvalidInputError) as caught:
        analyze_file(path, ["beats", "loudness"], AnalysisParams())
    assert caught.value.field == "features"
    assert "loudness" in caught.value.message
    with pytest.raises(InvalidInputError):
        analyze_file(path, [], AnalysisParams())


def test_beats_of_a_silent_video_is_invalid_media(tmp_path: Path) -> None:
    path = tmp_path / "mute.mp4"
    write_video(path, [solid((10, 10, 10))] * 5)
    with pytest.raises(InvalidMediaError, match="no audio stream: cannot compute beats"):
        analyze_file(path, ["beats"], AnalysisParams())


def test_video_features_of_audio_are_invalid_media(tmp_path: Path) -> None:
    path = tmp_path / "click.wav"
    write_click_track(path, bpm=120, duration_s=1)
    with pytest.raises(InvalidMediaError, match="no video stream"):
        analyze_file(path, ["motion"], AnalysisParams())


def test_garbage_is_invalid_media(tmp_path: Path) -> None:
    path = tmp_path / "junk.wav"
    path.write_bytes(b"this is not media" * 100)
    with pytest.raises(InvalidMediaError):
        analyze_file(path, ["energy"], AnalysisParams())


def test_a_clip_with_both_streams_gives_a_json_result(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    write_test_clip(path, width=128, height=72, fps=25, duration_s=2.0)
    features = ["tempo", "energy", "spectrum", "onsets", "metadata", "scene_changes", "motion"]
    result = analyze_file(path, features, AnalysisParams(window_ms=20))
    assert json.loads(json.dumps(result)) == result
    assert result["version"] == ANALYZER_VERSION
    assert result["features"] == sorted(set(features) - {"tempo"} | {"beats"})
    assert result["duration"] == pytest.approx(2.0, abs=0.05)
    assert set(result["audio"]) == {"beats", "energy", "spectrum", "onsets"}
    assert abs(len(result["audio"]["energy"]["times"]) - 100) <= 3  # AAC adds priming samples
    assert set(result["video"]) == {"metadata", "scene_changes", "motion"}
    assert result["video"]["metadata"]["has_audio"] is True


@pytest.mark.parametrize(
    "params",
    [
        {"window_ms": 2},
        {"window_ms": 2000},
        {"bands": {"bass": (200, 20)}},
        {"bands": {"Bass": (20, 200)}},
        {"bands": {f"b{i}": (i, i + 1) for i in range(17)}},
        {"bands": {}},
        {"scene_threshold": 1.5},
        {"tempo_min": 150, "tempo_max": 160},
        {"tempo_min": 60, "tempo_max": 180, "tempo_hint": 200},
        {"tempo_hint": 10},
        {"min_bpm": 60},
        {"hop": 3},
    ],
)
def test_bad_params_are_rejected(params: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        AnalysisParams.model_validate(params)


def test_the_params_are_the_model_recipes_are_checked_with() -> None:
    from artdag_common import operations
    from services.analyzer.features import params

    assert AnalysisParams is params.AnalysisParams is operations.AnalysisParams


def test_params_are_frozen_and_round_trip() -> None:
    params = AnalysisParams(bands={"sub": (20, 60), "air": (8000, 16000)})
    assert AnalysisParams.model_validate(params.model_dump(mode="json")) == params
    with pytest.raises(ValidationError):
        params.window_ms = 10  # type: ignore[misc]
