from pathlib import Path

import pytest

from artdag_cli.demo_media import write_click_track, write_test_clip
from artdag_common.errors import InvalidMediaError
from services.analyzer.media_info import probe_file


def test_probe_counts_frames_and_streams(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    write_test_clip(clip, width=160, height=120, fps=25, duration_s=2.0)
    info = probe_file(clip, "QmX")
    assert (info.width, info.height, info.fps, info.frame_count) == (160, 120, 25.0, 50)
    assert info.has_video and info.has_audio
    assert info.video_codec == "h264" and info.audio_codec == "aac"
    assert info.duration_s == pytest.approx(2.0, abs=0.1)


def test_probe_of_audio_and_of_junk(tmp_path: Path) -> None:
    wav = tmp_path / "click.wav"
    write_click_track(wav, bpm=120, duration_s=1.5)
    info = probe_file(wav, "QmX")
    assert not info.has_video and info.has_audio and info.frame_count is None
    assert info.duration_s == pytest.approx(1.5, abs=0.01)
    junk = tmp_path / "junk"
    junk.write_bytes(b"#EXTM3U\n#EXT-X-VERSION:3\nhttp://example.invalid/a.ts\n")
    with pytest.raises(InvalidMediaError):
        probe_file(junk, "QmX")
    text = tmp_path / "text"
    text.write_text("hello")
    with pytest.raises(InvalidMediaError):
        probe_file(text, "QmX")
