"""Input limits: declared sizes are refused before decoding, decoded ones are checked again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from artdag_common.errors import InvalidMediaError
from artdag_common.media_limits import InputLimits
from services.analyzer.features import AnalysisParams, analyze_file
from services.analyzer.media_info import probe_file
from services.executor.media import MediaReader, probe, set_input_limits
from tests.zoo import ZOO, decode_bomb, late_bomb


@pytest.fixture
def limits() -> Iterator[None]:
    """Lets a test set the executor's limits; the defaults come back after it."""
    yield
    set_input_limits(InputLimits())


def test_excess_names_the_figure_and_the_setting() -> None:
    limits = InputLimits(max_pixels=1000, max_duration_s=10, max_frames=100)
    assert limits.excess(width=40, height=25, duration_s=10, frames=100) is None
    assert "41x25 frames are over the limit of 1,000 pixels (ARTDAG_MAX_INPUT_PIXELS)" in str(
        limits.excess(width=41, height=25)
    )
    assert "ARTDAG_MAX_INPUT_DURATION_S" in str(limits.excess(duration_s=10.5))
    assert "ARTDAG_MAX_INPUT_FRAMES" in str(limits.excess(frames=101))
    # FFmpeg's own cap sits a little above ours (it counts the stride-aligned width).
    assert int(limits.decoder_options["max_pixels"]) > 1000


def test_a_guard_checks_every_frame_and_the_span_decoded() -> None:
    guard = InputLimits(max_pixels=100, max_duration_s=2, max_frames=3).guard("clip")
    small, large = SimpleNamespace(width=10, height=10), SimpleNamespace(width=11, height=10)
    guard.video(small, 5.0)
    guard.at(6.5)  # relative to the first frame: the stream may start anywhere
    with pytest.raises(InvalidMediaError, match="clip: 11x10 frames are over"):
        guard.video(large, 6.0)
    with pytest.raises(InvalidMediaError, match="ARTDAG_MAX_INPUT_DURATION_S"):
        guard.at(7.5)
    guard.video(small, 6.0)  # the third
    with pytest.raises(InvalidMediaError, match="4 frames are over the limit of 3"):
        guard.video(small, 6.0)


def test_the_executor_refuses_a_decode_bomb_before_its_first_frame(tmp_path: Path) -> None:
    bomb = decode_bomb(tmp_path / "bomb.mp4")
    assert bomb.stat().st_size < 10_000
    with pytest.raises(InvalidMediaError, match=r"bomb.mp4: 16000x16000 frames are over .*ARTDAG_MAX_INPUT_PIXELS"):
        probe(bomb)
    with pytest.raises(InvalidMediaError, match="ARTDAG_MAX_INPUT_PIXELS"):
        MediaReader(bomb)


def test_a_stream_that_grows_after_its_header_is_stopped_at_the_decoder(tmp_path: Path) -> None:
    bomb = late_bomb(tmp_path / "late.mp4")
    assert probe(bomb).width == 64  # every header says 64x64
    decoded = 0
    with MediaReader(bomb) as reader, pytest.raises(InvalidMediaError, match=r"late\.mp4: cannot be decoded"):
        for frame in reader.frames(audio=False):
            assert frame.width == 64  # type: ignore[union-attr]
            decoded += 1
    assert decoded >= 20  # the honest frames came, the 16000x16000 ones never did


def test_the_executor_stops_at_the_frame_and_duration_limits(tmp_path: Path, limits: None) -> None:
    indexed = ZOO["yuv444"][1](tmp_path / "clip.mp4")  # 12 frames, 0.48 s, counted in the MP4's index
    unindexed = ZOO["vp9"][1](tmp_path / "clip.webm")  # the same, its frames counted by no header
    set_input_limits(InputLimits(max_frames=5))
    with pytest.raises(InvalidMediaError, match=r"clip\.mp4: 12 frames are over the limit of 5"):
        MediaReader(indexed)
    with MediaReader(unindexed) as reader, pytest.raises(InvalidMediaError, match="6 frames are over the limit"):
        for _ in reader.frames():
            pass
    set_input_limits(InputLimits(max_duration_s=0.3))
    with pytest.raises(InvalidMediaError, match="ARTDAG_MAX_INPUT_DURATION_S"):
        MediaReader(indexed)


def test_the_analyzer_reports_what_a_bomb_declares_and_never_decodes_it(tmp_path: Path) -> None:
    bomb = decode_bomb(tmp_path / "bomb.mp4")
    info = probe_file(bomb, "QmX")
    assert (info.width, info.height) == (16000, 16000)
    assert InputLimits().excess(width=info.width, height=info.height) is not None
    with pytest.raises(InvalidMediaError, match="ARTDAG_MAX_INPUT_PIXELS"):
        analyze_file(bomb, ["motion"], AnalysisParams())
    with pytest.raises(InvalidMediaError, match="cannot decode media"):
        analyze_file(late_bomb(tmp_path / "late.mp4"), ["motion"], AnalysisParams())


def test_the_analyzer_counts_frames_only_up_to_the_limit(tmp_path: Path) -> None:
    clip = ZOO["yuv444"][1](tmp_path / "clip.mp4")
    assert probe_file(clip, "QmX").frame_count == 12
    assert probe_file(clip, "QmX", InputLimits(max_frames=4)).frame_count == 5
