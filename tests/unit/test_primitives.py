"""Tests for the executor's primitives on tiny generated media: timing, geometry, pixels, audio, errors."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
import pytest

from artdag_cli.demo_media import write_test_clip
from artdag_common.errors import InvalidInputError, InvalidMediaError, PermanentError
from artdag_common.operations import OPERATIONS, get_operation
from services.executor.media import probe
from services.executor.operations import INLINE_RENDERERS, RENDERERS, render_inline, run_operation
from tests.samples import SAMPLE_STEPS, make_input

FPS = 25
U8 = npt.NDArray[np.uint8]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("inputs")


def _input(media: Path, kind: str, index: int = 0) -> str:
    path = media / f"{kind}-{index}" / "x"
    path.parent.mkdir(exist_ok=True)
    return str(make_input(kind, path.parent, index))


def _run(node_type: str, config: dict[str, Any], inputs: list[str], out: Path, seed: int = 0) -> Path:
    run_operation(node_type, config, inputs, str(out), [f"#{i}" for i in range(len(inputs))], seed=seed)
    return out


def _solid(path: Path, rgb: tuple[int, int, int], *, size: tuple[int, int] = (64, 48), frames: int = 10) -> str:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"crf": "1", "threads": "1"})
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        image = np.zeros((size[1], size[0], 3), dtype=np.uint8)
        image[:] = rgb
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return str(path)


def _frames(path: Path) -> list[U8]:
    with av.open(str(path)) as container:
        return [np.asarray(f.to_ndarray(format="rgb24"), dtype=np.uint8) for f in container.decode(video=0)]


def _streams(path: Path) -> tuple[int, int]:
    with av.open(str(path)) as container:
        return len(container.streams.video), len(container.streams.audio)


def _duration(path: Path, kind: str = "video") -> float:
    with av.open(str(path)) as container:
        stream = container.streams.video[0] if kind == "video" else container.streams.audio[0]
        assert stream.duration is not None and stream.time_base is not None
        return float(stream.duration * stream.time_base)


# ------------------------------------------------------------------ contracts


def test_every_operation_has_a_renderer_and_arity() -> None:
    assert set(RENDERERS) == {name for name, op in OPERATIONS.items() if op.rendered}
    arity = {name: (op.min_inputs, op.max_inputs) for name, op in OPERATIONS.items()}
    assert arity["SEQUENCE"] == (1, 256) and arity["LAYER"] == (2, 16) and arity["AUDIO_MIX"] == (2, 32)
    assert arity["BLEND"] == arity["MUX"] == (2, 2) and arity["SEGMENT"] == arity["EFFECT"] == (1, 1)
    covered = {node_type for _, node_type, _, _ in SAMPLE_STEPS}
    assert covered >= set(RENDERERS) - {"EFFECT", "JOIN"}  # JOIN: see tests/integration/test_chunks.py


@pytest.mark.parametrize(
    ("node_type", "config", "field"),
    [
        ("SEGMENT", {"start": 2, "end": 1}, ""),
        ("SEGMENT", {"offset": 1, "end": 2}, ""),
        ("SEGMENT", {"start": -1}, "start"),
        ("TRANSFORM", {"speed": 8}, "speed"),
        ("TRANSFORM", {"rotate": 45}, "rotate"),
        ("TRANSFORM", {"hue": "30;movie=/etc/passwd"}, "hue"),
        ("TRANSFORM", {"crop": {"width": 33, "height": 20}}, "crop.width"),
        ("TRANSFORM", {"flip": "x"}, "flip"),
        ("SEQUENCE", {"transition": {"type": "wipe"}}, "transition.type"),
        ("SEQUENCE", {"target_size": "explicit"}, ""),
        ("BLEND", {"mode": "burn"}, "mode"),
        ("BLEND", {"opacity": 1.5}, "opacity"),
        ("LAYER", {"inputs": [{"opacity": 2}]}, "inputs.0.opacity"),
        ("AUDIO_MIX", {"gains": [1, -1]}, "gains"),
        ("MUX", {"shortest": True, "video_stream": 0}, "video_stream"),
        ("EFFECT", {"effect": "invert", "params": {"bogus": 1}}, "params.bogus"),
    ],
)
def test_bad_configs_name_the_field(
    media: Path, tmp_path: Path, node_type: str, config: dict[str, Any], field: str
) -> None:
    op = get_operation(node_type)
    assert op is not None
    inputs = [_input(media, "video")] * max(op.min_inputs, 1)
    with pytest.raises(InvalidInputError) as err:
        _run(node_type, config, inputs, tmp_path / "out.mp4")
    assert (err.value.field or "") == field


def test_config_errors_found_while_rendering(media: Path, tmp_path: Path) -> None:
    video = _input(media, "video")
    cases: list[tuple[str, dict[str, Any], list[str], str]] = [
        ("SEGMENT", {"start": 30}, [video], "start"),
        ("TRANSFORM", {"crop": {"x": 100, "width": 100, "height": 100}}, [video], "crop"),
        ("TRANSFORM", {"blur": 64}, [video], "blur"),
        ("LAYER", {"inputs": [{}, {}]}, [video, video], "inputs"),
        ("AUDIO_MIX", {"gains": [1.0]}, [video, video], "gains"),
    ]
    for node_type, config, inputs, field in cases:
        with pytest.raises(InvalidInputError) as err:
            _run(node_type, config, inputs, tmp_path / "out.mp4")
        assert err.value.field == field, node_type
    with pytest.raises(PermanentError):
        _run("SOURCE", {}, [], tmp_path / "out.mp4")


def test_undecodable_input_is_invalid_media(media: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(1).bytes(4096))
    for node_type, inputs in (("TRANSFORM", [junk]), ("SEQUENCE", [_input(media, "video"), junk])):
        with pytest.raises(InvalidMediaError, match=r"input #\d: cannot be opened"):
            _run(node_type, {}, [str(p) for p in inputs], tmp_path / "out.mp4")
    with pytest.raises(InvalidMediaError, match="input #1: has no audio stream"):
        _run("MUX", {}, [_input(media, "video"), _input(media, "silent", 1)], tmp_path / "out.mp4")


# ------------------------------------------------------------------ SEGMENT


def test_precise_segment_is_frame_accurate(media: Path, tmp_path: Path) -> None:
    out = _run("SEGMENT", {"start": 0.4, "end": 1.2}, [_input(media, "video")], tmp_path / "s.mp4")
    assert _duration(out) == pytest.approx(0.8, abs=1 / FPS)
    assert _duration(out, "audio") == pytest.approx(0.8, abs=0.03)
    assert probe(out).frame_count == 20
    same = _run("SEGMENT", {"offset": 0.4, "duration": 0.8}, [_input(media, "video")], tmp_path / "o.mp4")
    assert same.read_bytes() == out.read_bytes()


def test_copy_segment_starts_at_a_keyframe_without_reencoding(media: Path, tmp_path: Path) -> None:
    # the profile's fixed GOP (48 frames) gives keyframes at 0 s and 1.92 s
    src = tmp_path / "src.mp4"
    long = media / "long.mp4"
    from artdag_cli.demo_media import write_test_clip

    write_test_clip(long, width=64, height=48, fps=FPS, duration_s=3.0)
    _run("TRANSFORM", {}, [str(long)], src)
    out = _run("SEGMENT", {"start": 2.5, "end": 2.9, "precise": False}, [str(src)], tmp_path / "c.mp4")
    assert _duration(out) == pytest.approx(2.9 - 1.92, abs=1 / FPS)
    with av.open(str(src)) as a, av.open(str(out)) as b:
        va, vb = a.streams.video[0], b.streams.video[0]
        assert va.codec_context.extradata == vb.codec_context.extradata
        source_packets = {bytes(p) for p in a.demux(va) if p.size}
        copied = [p for p in b.demux(vb) if p.size]
        assert copied[0].is_keyframe
        assert all(bytes(p) in source_packets for p in copied)


# ------------------------------------------------------------------ TRANSFORM


def test_speed_changes_duration_and_keeps_audio(media: Path, tmp_path: Path) -> None:
    video = _input(media, "video")
    fast = _run("TRANSFORM", {"speed": 2.0}, [video], tmp_path / "f.mp4")
    assert _duration(fast) == pytest.approx(0.8, abs=1 / FPS)
    assert _duration(fast, "audio") == pytest.approx(0.8, abs=0.05)
    slow = _run("TRANSFORM", {"speed": 0.25}, [video], tmp_path / "s.mp4")
    assert _duration(slow) == pytest.approx(6.4, abs=1 / FPS)


def test_brightness_raises_luma(media: Path, tmp_path: Path) -> None:
    video = _input(media, "video")
    plain = _frames(_run("TRANSFORM", {}, [video], tmp_path / "n.mp4"))[0]
    bright = _frames(_run("TRANSFORM", {"brightness": 0.2}, [video], tmp_path / "b.mp4"))[0]
    assert bright.mean() > plain.mean() + 20
    grey = _frames(_run("TRANSFORM", {"saturation": 0.0}, [video], tmp_path / "g.mp4"))[0].astype(int)
    assert np.abs(grey[..., 0] - grey[..., 2]).mean() < 4


def test_rotate_flip_and_crop_move_a_known_region(tmp_path: Path) -> None:
    # left half red, right half blue
    src = tmp_path / "halves.mp4"
    with av.open(str(src), "w") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"crf": "1"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        image = np.zeros((48, 64, 3), dtype=np.uint8)
        image[:, :32] = (255, 0, 0)
        image[:, 32:] = (0, 0, 255)
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    rotated = _frames(_run("TRANSFORM", {"rotate": 90}, [str(src)], tmp_path / "r.mp4"))[0]
    assert rotated.shape == (64, 48, 3)
    assert rotated[:24, :, 0].mean() > 200 and rotated[40:, :, 2].mean() > 200  # red moved to the top
    flipped = _frames(_run("TRANSFORM", {"flip": "h"}, [str(src)], tmp_path / "h.mp4"))[0]
    assert flipped[:, :24, 2].mean() > 200 and flipped[:, 40:, 0].mean() > 200
    crop = {"crop": {"x": 32, "y": 0, "width": 32, "height": 32}}
    cropped = _frames(_run("TRANSFORM", crop, [str(src)], tmp_path / "c.mp4"))[0]
    assert cropped.shape == (32, 32, 3) and cropped[..., 2].mean() > 200


# ------------------------------------------------------------------ SEQUENCE


def test_sequence_normalises_and_fills_silence(media: Path, tmp_path: Path) -> None:
    inputs = [_input(media, "video", 0), _input(media, "silent", 1)]  # 160x120 1.6 s, 128x96 1.2 s
    out = _run("SEQUENCE", {}, inputs, tmp_path / "cut.mp4")
    info = probe(out)
    assert (info.width, info.height, info.fps) == (160, 120, Fraction(FPS))
    assert _duration(out) == pytest.approx(2.8, abs=1 / FPS)
    assert info.has_audio and _duration(out, "audio") == pytest.approx(2.8, abs=0.03)
    largest = _run("SEQUENCE", {"target_size": "largest"}, [inputs[1], inputs[0]], tmp_path / "l.mp4")
    assert (probe(largest).width, probe(largest).height) == (160, 120)
    last = _run("SEQUENCE", {"target_size": "last"}, inputs, tmp_path / "last.mp4")
    assert (probe(last).width, probe(last).height) == (128, 96), "the last clip's size, as the original's `last`"
    explicit = {"target_size": "explicit", "width": 96, "height": 64}
    assert probe(_run("SEQUENCE", explicit, inputs, tmp_path / "e.mp4")).width == 96


def test_crossfade_and_fade_durations(media: Path, tmp_path: Path) -> None:
    inputs = [_input(media, "video", 0), _input(media, "video", 1), _input(media, "silent", 2)]
    xfade = {"transition": {"type": "crossfade", "duration": 0.4}}
    out = _run("SEQUENCE", xfade, inputs, tmp_path / "x.mp4")
    assert _duration(out) == pytest.approx(1.6 + 1.6 + 1.2 - 2 * 0.4, abs=1 / FPS)
    assert _duration(out, "audio") == pytest.approx(_duration(out), abs=0.03)
    fade = _run("SEQUENCE", {"transition": {"type": "fade", "duration": 0.4}}, inputs[:2], tmp_path / "f.mp4")
    frames = _frames(fade)
    assert len(frames) == 80
    assert frames[39].mean() < 30 and frames[40].mean() < 30 and frames[20].mean() > 60


def test_clip_shorter_than_transition_is_a_clear_error(media: Path, tmp_path: Path) -> None:
    inputs = [_input(media, "video", 0), _input(media, "silent", 1), _input(media, "video", 0)]
    with pytest.raises(InvalidInputError, match="shorter than") as err:
        _run("SEQUENCE", {"transition": {"type": "crossfade", "duration": 0.7}}, inputs, tmp_path / "o.mp4")
    assert err.value.field == "transition.duration"


# ------------------------------------------------------------------ LAYER / BLEND


def test_blend_multiply_of_known_colours(tmp_path: Path) -> None:
    a = _solid(tmp_path / "a.mp4", (200, 100, 50))
    b = _solid(tmp_path / "b.mp4", (128, 255, 0), size=(32, 24))  # resized to a's size
    out = _frames(_run("BLEND", {"mode": "multiply"}, [a, b], tmp_path / "m.mp4"))
    assert out[0].shape == (48, 64, 3)
    assert out[0][10:40, 10:50].reshape(-1, 3).mean(axis=0) == pytest.approx((100, 100, 0), abs=4)
    half = _frames(_run("BLEND", {"mode": "multiply", "opacity": 0.5}, [a, b], tmp_path / "h.mp4"))
    assert half[0][10:40, 10:50].reshape(-1, 3).mean(axis=0) == pytest.approx((150, 100, 25), abs=4)


def test_layer_opacity_mix_at_a_known_position(tmp_path: Path) -> None:
    base = _solid(tmp_path / "base.mp4", (0, 0, 200))
    top = _solid(tmp_path / "top.mp4", (200, 200, 0), size=(32, 24), frames=4)  # ends early: held
    config = {"inputs": [{"position": [20, 10], "opacity": 0.5, "scale": 0.5}]}
    frames = _frames(_run("LAYER", config, [base, top], tmp_path / "l.mp4"))
    assert len(frames) == 10
    for frame in (frames[0], frames[-1]):
        assert frame[13:20, 23:32].reshape(-1, 3).mean(axis=0) == pytest.approx((100, 100, 100), abs=6)
        assert frame[30:, 40:].reshape(-1, 3).mean(axis=0) == pytest.approx((0, 0, 200), abs=6)


# ------------------------------------------------------------------ MUX / AUDIO_MIX


def test_mux_shortest_and_copy(media: Path, tmp_path: Path) -> None:
    video, audio = _input(media, "silent", 1), _input(media, "audio", 0)  # 1.2 s video, 1.0 s audio
    out = _run("MUX", {"shortest": True}, [video, audio], tmp_path / "m.mp4")
    assert _streams(out) == (1, 1)
    assert _duration(out) == pytest.approx(1.0, abs=2 / FPS)
    assert _duration(out, "audio") <= _duration(out) + 0.03
    with av.open(video) as a, av.open(str(out)) as b:  # H.264 yuv420p video is copied
        assert {bytes(p) for p in b.demux(video=0) if p.size} <= {bytes(p) for p in a.demux(video=0) if p.size}
    longest = _run("MUX", {"shortest": False}, [video, audio], tmp_path / "n.mp4")
    assert _duration(longest) == pytest.approx(1.2, abs=1 / FPS)


def test_audio_mix_is_m4a_without_video(media: Path, tmp_path: Path) -> None:
    out = _run("AUDIO_MIX", {}, [_input(media, "video"), _input(media, "audio", 1)], tmp_path / "mix.m4a")
    data = out.read_bytes()
    assert data[4:12] == b"ftypM4A "
    assert _streams(out) == (0, 1)
    assert _duration(out, "audio") == pytest.approx(1.6, abs=0.03)


# ------------------------------------------------------------------ EFFECT


def test_effect_runs_frames_through_the_library(media: Path, tmp_path: Path) -> None:
    pytest.importorskip("artdag_effects")
    from tests.samples import EFFECT_SAMPLE

    _, node_type, config, kinds = EFFECT_SAMPLE
    out = _run(node_type, config, [_input(media, kinds[0])], tmp_path / "e.mp4", seed=7)
    assert _streams(out) == (1, 1)
    again = _run(node_type, config, [_input(media, kinds[0])], tmp_path / "e2.mp4", seed=7)
    assert again.read_bytes() == out.read_bytes()


# ------------------------------------------------------------------ determinism


@pytest.mark.parametrize(("label", "node_type", "config", "kinds"), SAMPLE_STEPS, ids=[s[0] for s in SAMPLE_STEPS])
def test_every_sample_renders_identically_twice(
    media: Path, tmp_path: Path, label: str, node_type: str, config: dict[str, Any], kinds: list[str]
) -> None:
    inputs = [_input(media, kind, index) for index, kind in enumerate(kinds)]
    first = _run(node_type, config, inputs, tmp_path / "a.out", seed=1).read_bytes()
    second = _run(node_type, config, inputs, tmp_path / "b.out", seed=1).read_bytes()
    assert first == second, label
    assert b"Lavf" not in first


def test_effect_can_resize_in_the_same_pass(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    write_test_clip(clip, width=320, height=180, fps=25, duration_s=1.0)
    out = tmp_path / "out.mp4"
    config = {"effect": "invert", "size": {"width": 160, "height": 120, "mode": "fit"}}
    run_operation("EFFECT", config, [str(clip)], str(out), ["clip"], seed=1)
    with av.open(str(out)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert frame.shape == (120, 160, 3)
    # fit letterboxes 16:9 into 4:3: the black bars come out white once inverted.
    assert frame[:8].mean() > 235
    with pytest.raises(InvalidInputError) as info:
        run_operation(
            "EFFECT",
            {"effect": "invert", "size": {"width": 3, "height": 2}},
            [str(clip)],
            str(tmp_path / "bad.mp4"),
            ["clip"],
            seed=1,
        )
    assert info.value.field == "size.width"


def test_untouched_sound_is_copied_not_re_encoded(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    write_test_clip(clip, width=160, height=120, fps=25, duration_s=1.0)
    out = tmp_path / "out.mp4"
    run_operation("RESIZE", {"width": 96, "height": 64}, [str(clip)], str(out), ["clip"], seed=1)
    with av.open(str(out)) as rendered, av.open(str(clip)) as source:
        copied = [bytes(p) for p in rendered.demux(rendered.streams.audio[0]) if p.size]
        original = [bytes(p) for p in source.demux(source.streams.audio[0]) if p.size]
    assert copied == original


def test_inline_node_types_are_those_the_operations_table_marks() -> None:
    # The planner routes by the table's flag, the executor renders by its own table: they must agree.
    assert set(INLINE_RENDERERS) == {name for name, op in OPERATIONS.items() if op.inline}


@pytest.mark.parametrize("node_type", sorted(INLINE_RENDERERS))
def test_inline_output_equals_the_file_rendering(node_type: str, tmp_path: Path) -> None:
    op = get_operation(node_type)
    assert op is not None
    config = {"n": 7} if node_type == "NOOP" else {}
    output = tmp_path / "out.bin"
    run_operation(node_type, config, [], str(output), [], seed=0xABC)
    assert render_inline(node_type, op.parse_config(config), 0xABC) == output.read_bytes()
    assert render_inline(node_type, op.parse_config(config), 0xABD) != output.read_bytes()
