"""Video features on synthetic clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from services.analyzer.features import AnalysisParams, analyze_file
from tests.unit.analyzer.media import solid, write_video

PARAMS = AnalysisParams()
FPS = 25


def test_a_hard_cut_is_one_scene_change(tmp_path: Path) -> None:
    path = tmp_path / "cut.mp4"
    write_video(path, [solid((200, 30, 30))] * 30 + [solid((30, 60, 200))] * 30, fps=FPS)
    video = analyze_file(path, ["scene_changes", "metadata"], PARAMS)["video"]
    cuts = video["scene_changes"]["times"]
    assert len(cuts) == 1
    assert cuts[0] == pytest.approx(30 / FPS, abs=1 / FPS + 1e-6)
    assert video["scene_changes"]["threshold"] == 0.3
    meta = video["metadata"]
    assert (meta["width"], meta["height"], meta["codec"], meta["has_audio"]) == (64, 48, "h264", False)
    assert meta["frame_rate"] == pytest.approx(FPS)
    assert meta["duration"] == pytest.approx(60 / FPS, abs=0.05)


def _box_frames(moving: bool) -> list[np.ndarray]:
    frames = []
    for i in range(40):
        frame = solid((20, 20, 20))
        x = 4 + i if moving else 10
        frame[16:32, x : x + 16] = 230
        frames.append(frame)
    return frames


def test_a_moving_box_has_more_motion_than_a_still_frame(tmp_path: Path) -> None:
    moving, still = tmp_path / "moving.mp4", tmp_path / "still.mp4"
    write_video(moving, _box_frames(True), fps=FPS)
    write_video(still, _box_frames(False), fps=FPS)
    m = analyze_file(moving, ["motion"], PARAMS)["video"]["motion"]
    s = analyze_file(still, ["motion"], PARAMS)["video"]["motion"]
    assert len(m["times"]) == len(m["values"]) == 39
    assert np.mean(m["values"]) > 0.3
    assert np.mean(s["values"]) < 0.05
    assert np.mean(m["values"]) > 10 * np.mean(s["values"])
    assert "scene_changes" not in analyze_file(moving, ["motion"], PARAMS)["video"]
