"""Tests for the executor's media operations, its encoder profile and the demo media.

Everything runs on tiny generated clips; nothing here needs fixtures on disk.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

from artdag_cli.demo_media import write_click_track, write_test_clip
from artdag_common.errors import InvalidInputError, InvalidMediaError
from services.executor import encoding
from services.executor.media import MediaInfo, parse_colour, probe
from services.executor.primitives.resize import render_resize

FPS = 25


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 640x360, 25 fps, 1 s clip with audio."""
    path = tmp_path_factory.mktemp("media") / "clip.mp4"
    write_test_clip(path, width=640, height=360, fps=FPS, duration_s=1.0)
    return path


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 160x90 clip without audio."""
    path = tmp_path_factory.mktemp("media") / "small.mp4"
    write_test_clip(path, width=160, height=90, fps=FPS, duration_s=0.4, with_audio=False)
    return path


@pytest.fixture(scope="module")
def fit_output(clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`clip` resized to 320x240 in fit mode."""
    out = tmp_path_factory.mktemp("out") / "fit.mp4"
    render_resize(clip, out, width=320, height=240, mode="fit")
    return out


def _rgb(frame: av.VideoFrame) -> npt.NDArray[np.uint8]:
    return np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)


def _rgb_frames(path: Path) -> list[npt.NDArray[np.uint8]]:
    with av.open(str(path)) as container:
        return [_rgb(f) for f in container.decode(video=0)]


def _first_rgb(path: Path) -> npt.NDArray[np.uint8]:
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            return _rgb(frame)
    raise AssertionError("no frames")


def _content_box(rgb: npt.NDArray[np.uint8], threshold: int = 40) -> tuple[int, int]:
    """Width and height of the region that is not (near-)black."""
    mask = rgb.max(axis=2) > threshold
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)


# ------------------------------------------------------------------ render_resize


def test_fit_output_format_size_and_duration(clip: Path, fit_output: Path) -> None:
    src, out = probe(clip), probe(fit_output)
    assert isinstance(out, MediaInfo)
    assert (out.width, out.height) == (320, 240)
    assert out.fps == Fraction(FPS)
    assert abs(out.duration_s - src.duration_s) <= 1 / FPS
    assert out.frame_count == src.frame_count
    assert fit_output.read_bytes()[4:8] == b"ftyp"
    with av.open(str(fit_output)) as container:
        assert "mp4" in container.format.name.split(",")
        video = container.streams.video[0]
        audio = container.streams.audio[0]
        assert video.codec_context.name == "h264"
        assert video.profile == "High"
        assert video.codec_context.pix_fmt == "yuv420p"
        assert audio.codec_context.name == "aac"
        assert audio.codec_context.sample_rate == 44100
        assert video.duration is not None and video.time_base is not None
        assert abs(float(video.duration * video.time_base) - src.duration_s) <= 1 / FPS
        frames = list(container.decode(video=0))
    assert all((f.width, f.height) == (320, 240) for f in frames)
    pts = [f.pts for f in frames]
    assert None not in pts and pts == sorted(p for p in pts if p is not None)


def test_render_returns_probe_of_output(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.mp4"
    info = render_resize(clip, out, width=64, height=48)
    assert info == probe(out)
    assert info.has_audio and info.sample_rate == 44100


def test_fit_pads_with_black_bars(fit_output: Path) -> None:
    # 640x360 in 320x240 -> 320x180 picture with 30-pixel bars above and below.
    rgb = _first_rgb(fit_output)
    assert rgb[:26].mean() < 20
    assert rgb[-26:].mean() < 20
    assert rgb[40:200].mean() > 60
    assert _content_box(rgb) == pytest.approx((320, 180), abs=2)


def test_fit_background_colour(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "red.mp4"
    render_resize(clip, out, width=320, height=240, mode="fit", background="#FF0000")
    bar = _first_rgb(out)[:26].reshape(-1, 3).mean(axis=0)
    assert bar[0] > 230 and bar[1] < 25 and bar[2] < 25


@pytest.mark.parametrize("mode", ["fill", "stretch", "pad"])
def test_modes_produce_requested_size(clip: Path, tmp_path: Path, mode: str) -> None:
    out = tmp_path / f"{mode}.mp4"
    info = render_resize(clip, out, width=320, height=240, mode=mode)
    assert (info.width, info.height) == (320, 240)
    rgb = _first_rgb(out)
    assert rgb.shape == (240, 320, 3)
    if mode in ("fill", "stretch"):  # no bars: the picture covers the frame
        assert rgb[:10].mean() > 60 and rgb[-10:].mean() > 60
        assert _content_box(rgb) == (320, 240)


def test_pad_does_not_upscale(small_clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "pad.mp4"
    info = render_resize(small_clip, out, width=320, height=240, mode="pad")
    assert (info.width, info.height) == (320, 240)
    width, height = _content_box(_first_rgb(out))
    assert width <= 160 and height <= 90
    # fit mode, by contrast, scales the same input up to the full width
    fit = tmp_path / "fit.mp4"
    render_resize(small_clip, fit, width=320, height=240, mode="fit")
    assert _content_box(_first_rgb(fit))[0] == 320


def test_rendering_is_deterministic(clip: Path, fit_output: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.mp4"
    render_resize(clip, again, width=320, height=240, mode="fit")
    assert again.read_bytes() == fit_output.read_bytes()


def test_output_has_no_encoder_tag(fit_output: Path) -> None:
    data = fit_output.read_bytes()
    assert b"encoder=Lavf" not in data
    assert b"Lavf" not in data


def test_input_without_audio(small_clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "silent.mp4"
    info = render_resize(small_clip, out, width=64, height=64, mode="fill")
    assert info.audio_codec is None and info.sample_rate is None and not info.has_audio
    with av.open(str(out)) as container:
        assert len(container.streams.audio) == 0
        assert len(container.streams.video) == 1


def test_rotated_input_is_displayed_upright(tmp_path: Path) -> None:
    src = tmp_path / "rotated.mp4"
    with av.open(str(src), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.set_display_rotation(90)  # counter-clockwise
        for i in range(3):
            img = np.zeros((48, 64, 3), dtype=np.uint8)
            img[:, :32] = 255  # left half white
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    assert (probe(src).width, probe(src).height) == (48, 64)
    out = tmp_path / "upright.mp4"
    render_resize(src, out, width=48, height=64, mode="stretch")
    rgb = _first_rgb(out)
    assert rgb.shape == (64, 48, 3)
    # rotated 90° counter-clockwise, the white left half ends up at the bottom
    assert rgb[:28].mean() < 20 and rgb[36:].mean() > 235


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize("kind", ["random", "text", "empty", "missing"])
def test_non_media_raises_invalid_media(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"input.{'txt' if kind == 'text' else 'mp4'}"
    if kind == "random":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif kind == "text":
        path.write_text("this is not a video\n" * 50)
    elif kind == "empty":
        path.write_bytes(b"")
    with pytest.raises(InvalidMediaError) as err:
        render_resize(path, tmp_path / "out.mp4", width=320, height=240)
    assert path.name in str(err.value)
    with pytest.raises(InvalidMediaError):
        probe(path)


def test_playlist_is_not_followed(clip: Path, tmp_path: Path) -> None:
    playlist = tmp_path / "list.m3u8"
    playlist.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n{clip}\n#EXT-X-ENDLIST\n")
    with pytest.raises(InvalidMediaError):
        probe(playlist)


def test_audio_only_input_raises_invalid_media(tmp_path: Path) -> None:
    wav = tmp_path / "click.wav"
    write_click_track(wav, bpm=120, duration_s=0.5)
    with pytest.raises(InvalidMediaError, match="no video stream"):
        render_resize(wav, tmp_path / "out.mp4", width=320, height=240)
    with pytest.raises(InvalidMediaError, match="no video stream"):
        probe(wav)
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"width": 321, "height": 240}, "width"),
        ({"width": 0, "height": 240}, "width"),
        ({"width": 100_000, "height": 240}, "width"),
        ({"width": -2, "height": 240}, "width"),
        ({"width": 320, "height": 241}, "height"),
        ({"width": 320, "height": 240, "mode": "zoom"}, "mode"),
        ({"width": 320, "height": 240, "background": "red:x=1"}, "background"),
        ({"width": 320, "height": 240, "background": "#12345"}, "background"),
    ],
)
def test_bad_parameters_raise_invalid_input(clip: Path, tmp_path: Path, kwargs: dict[str, object], field: str) -> None:
    out = tmp_path / "out.mp4"
    with pytest.raises(InvalidInputError) as err:
        render_resize(clip, out, **kwargs)  # type: ignore[arg-type]
    assert err.value.field == field
    assert not out.exists()


def test_parse_colour() -> None:
    assert parse_colour("black") == "0x000000"
    assert parse_colour("Gray") == "0x808080"
    assert parse_colour("#A0b1C2") == "0xa0b1c2"
    with pytest.raises(InvalidInputError):
        parse_colour("0xffffff")


# ------------------------------------------------------------------ encoding profile


def test_encoder_fingerprint_and_validation(tmp_path: Path) -> None:
    fp = encoding.ENCODER_FINGERPRINT
    assert av.__version__ in fp and "libx264" in fp and "x264=" in fp and "crf=" in fp
    for width, height in ((321, 240), (320, 0), (10**6, 240)):
        with pytest.raises(ValueError):
            encoding.validate_dimensions(width, height)
    with encoding.open_output(tmp_path / "x.mp4") as container:
        with pytest.raises(ValueError):
            encoding.add_video_stream(container, 33, 32, Fraction(25))
        stream = encoding.add_video_stream(container, 32, 32, Fraction(25))
        assert stream.codec_context.thread_count == encoding.PROFILE.threads
        assert stream.codec_context.gop_size == encoding.PROFILE.gop_size


# ------------------------------------------------------------------ demo media


def test_demo_clip_properties(tmp_path: Path) -> None:
    path = tmp_path / "demo.mp4"
    write_test_clip(path, width=320, height=180, fps=30, duration_s=0.5)
    info = probe(path)
    assert (info.width, info.height, info.fps) == (320, 180, Fraction(30))
    assert info.duration_s == pytest.approx(0.5, abs=1 / 30)
    assert info.frame_count == 15
    assert info.audio_codec == "aac" and info.sample_rate == 44100
    with av.open(str(path)) as container:
        assert len(container.streams.audio) == 1
    again = tmp_path / "demo2.mp4"
    write_test_clip(again, width=320, height=180, fps=30, duration_s=0.5)
    assert again.read_bytes() == path.read_bytes()


def test_demo_clip_moving_box(tmp_path: Path) -> None:
    path = tmp_path / "box.mp4"
    write_test_clip(path, width=160, height=90, fps=10, duration_s=0.5, with_audio=False)
    frames = _rgb_frames(path)
    assert len(frames) == 5
    # the white box is near-white on every channel; find its column in each frame
    xs = [int(np.flatnonzero((f.min(axis=2) > 200).any(axis=0))[0]) for f in frames]
    assert xs == sorted(xs) and xs[0] < xs[-1]


def test_click_track(tmp_path: Path) -> None:
    path = tmp_path / "click.wav"
    write_click_track(path, bpm=120, duration_s=1.5, sample_rate=8000)
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "pcm_s16le"
        assert stream.codec_context.sample_rate == 8000
        samples = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
    assert len(samples) == 12000  # exactly 1.5 s
    # beats every 0.5 s: loud at 0, 4000, 8000 samples; silent in between
    for beat in (0, 4000, 8000):
        assert np.abs(samples[beat : beat + 80]).max() > 10000
    assert np.abs(samples[1000:3900]).max() == 0
    with pytest.raises(InvalidInputError):
        write_click_track(tmp_path / "bad.wav", bpm=0, duration_s=1.0)
