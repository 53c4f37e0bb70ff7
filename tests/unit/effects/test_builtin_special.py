"""Exact behaviour of pixel sorting, ASCII art and the temporal effects."""

from __future__ import annotations

import numpy as np
import pytest

from artdag_effects.font import RAMPS, glyph_masks
from artdag_effects.imaging import luma

from .helpers import H, W, frames, run, run1, sample_frame


def solid(value: int) -> np.ndarray:
    return np.full((H, W, 3), value, dtype=np.uint8)


def test_pixel_sort_sorts_each_row_by_luma_when_everything_is_in_band() -> None:
    frame = sample_frame()
    out = run1("pixel_sort", frame, {"low": 0, "high": 255})
    for y in range(H):
        assert (np.diff(luma(out[y : y + 1])[0].astype(int)) >= 0).all()
        assert sorted(map(tuple, out[y].tolist())) == sorted(map(tuple, frame[y].tolist()))
    reverse = run1("pixel_sort", frame, {"low": 0, "high": 255, "reverse": True})
    assert (np.diff(luma(reverse[:1])[0].astype(int)) <= 0).all()


def test_pixel_sort_leaves_pixels_outside_the_band_in_place() -> None:
    frame = sample_frame()
    out = run1("pixel_sort", frame, {"low": 100, "high": 180})
    outside = (luma(frame) < 100) | (luma(frame) > 180)
    np.testing.assert_array_equal(out[outside], frame[outside])
    assert not np.array_equal(out, frame)


@pytest.mark.parametrize("key", ["hue", "saturation"])
def test_pixel_sort_by_other_keys_and_vertically(key: str) -> None:
    frame = sample_frame()
    out = run1("pixel_sort", frame, {"low": 0, "high": 255, "key": key, "direction": "vertical"})
    for x in range(W):
        assert sorted(map(tuple, out[:, x].tolist())) == sorted(map(tuple, frame[:, x].tolist()))
    assert not np.array_equal(out, frame)


def test_ascii_art_draws_glyphs_from_the_built_in_font() -> None:
    assert (run1("ascii_art", solid(0)) == 0).all()  # black cells are spaces
    white = run1("ascii_art", solid(255), {"cell": 7, "color": "white"})
    at = glyph_masks(RAMPS["standard"], 7, 5)[-1] * 255  # the brightest glyph, '@'
    np.testing.assert_array_equal(white[:7, :5, 0], at)
    np.testing.assert_array_equal(white[7:14, 5:10, 1], at)
    out = run1("ascii_art", sample_frame(), {"color": "green", "charset": "blocks"})
    assert set(map(tuple, out.reshape(-1, 3).tolist())) <= {(0, 0, 0), (40, 255, 70)}


def test_ascii_art_in_colour_keeps_each_cells_hue() -> None:
    red = np.zeros((H, W, 3), dtype=np.uint8)
    red[..., 0] = 200
    out = run1("ascii_art", red, {"charset": "binary"})
    assert out[..., 0].max() == 255 and out[..., 1].max() == 0


@pytest.mark.parametrize("charset", sorted(RAMPS))
def test_every_ramp_renders(charset: str) -> None:
    out = run1("ascii_art", sample_frame(37, 53), {"charset": charset, "cell": 9})
    assert out.shape == (37, 53, 3) and out.any()


def test_datamosh_holds_blocks_of_the_previous_output() -> None:
    a, b = solid(10), solid(200)
    out = run("datamosh", [a, b, b], {"intensity": 0.5, "block": 8, "motion": 0})
    np.testing.assert_array_equal(out[0], a)
    held = (out[1] == 10).all(axis=2)
    assert 0 < held.mean() < 1  # some blocks held the old picture …
    assert ((out[1] == 10) | (out[1] == 200)).all()
    blocks = held.reshape(H // 8, 8, W // 8, 8)
    assert (blocks.all(axis=(1, 3)) | ~blocks.any(axis=(1, 3))).all()  # … as whole blocks


def test_datamosh_keyframes_and_jumps_show_a_clean_frame() -> None:
    seq = frames(6)
    out = run("datamosh", seq, {"intensity": 1.0, "keyframe_every": 3})
    np.testing.assert_array_equal(out[3], seq[3])
    assert not np.array_equal(out[4], seq[4])
    jumped = run("datamosh", seq[:1], start=50)[0]
    np.testing.assert_array_equal(jumped, seq[0])


@pytest.mark.parametrize(("mode", "off"), [("black", 0), ("white", 255)])
def test_strobe_blanks_the_off_phase(mode: str, off: int) -> None:
    frame = sample_frame()
    out = run("strobe", [frame] * 6, {"rate": 10.0, "duty": 0.5, "mode": mode}, fps=30.0)
    np.testing.assert_array_equal(out[0], frame)
    np.testing.assert_array_equal(out[1], frame)
    assert (out[2] == off).all() and (out[5] == off).all()
    inverted = run("strobe", [frame] * 3, {"rate": 10.0, "mode": "invert"}, fps=30.0)[2]
    np.testing.assert_array_equal(inverted, 255 - frame)


def test_strobe_hold_freezes_the_last_shown_frame() -> None:
    seq = frames(6)
    out = run("strobe", seq, {"rate": 10.0, "duty": 0.5, "mode": "hold"}, fps=30.0)
    np.testing.assert_array_equal(out[2], seq[1])
    np.testing.assert_array_equal(out[3], seq[3])
    np.testing.assert_array_equal(out[5], seq[4])


def test_echo_mixes_in_delayed_frames() -> None:
    seq = [solid(0)] * 4 + [solid(200)]
    out = run("echo", seq, {"count": 1, "delay": 4, "decay": 1.0})
    assert (out[4] == 100).all()  # (200 + 0) / 2
    np.testing.assert_array_equal(out[3], seq[3])


def test_trails_blend_and_lighten() -> None:
    seq = [solid(200), solid(0), solid(0)]
    blend = run("trails", seq, {"persistence": 0.5})
    assert [int(f[0, 0, 0]) for f in blend] == [200, 100, 50]
    dot = [solid(0) for _ in range(3)]
    for i, f in enumerate(dot):
        f[10, 10 + 10 * i] = 255
    lighten = run("trails", dot, {"persistence": 0.5, "mode": "lighten"})[-1]
    assert [int(lighten[10, x, 0]) for x in (10, 20, 30)] == [64, 128, 255]
