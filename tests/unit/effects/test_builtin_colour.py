"""Exact behaviour of the colour and tone effects."""

from __future__ import annotations

import numpy as np
import pytest

from .helpers import H, W, run, run1, sample_frame


def solid(r: int, g: int, b: int) -> np.ndarray:
    return np.tile(np.array([r, g, b], dtype=np.uint8), (H, W, 1))


def channel_spread(frame: np.ndarray) -> float:
    return float(np.ptp(frame.astype(int), axis=2).mean())


def rough(frame: np.ndarray) -> float:
    return float(np.abs(np.diff(frame.astype(int), axis=1)).mean())


def test_invert_maps_10_to_245_and_half_intensity_to_the_middle() -> None:
    assert (run1("invert", solid(10, 10, 10)) == 245).all()
    assert (run1("invert", solid(0, 255, 10), {"intensity": 0.5}) == [128, 128, 128]).all()


def test_grayscale_gives_equal_channels_with_rec601_luma() -> None:
    out = run1("grayscale", sample_frame())
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    assert run1("grayscale", solid(255, 0, 0))[0, 0, 0] == 77  # 0.299 · 255


def test_sepia_tints_grey_brown() -> None:
    r, g, b = (int(v) for v in run1("sepia", solid(100, 100, 100))[0, 0])
    assert r > g > b


def test_brightness_and_contrast() -> None:
    grey = solid(100, 100, 100)
    assert run1("brightness_contrast", grey, {"brightness": 0.2, "contrast": 1})[0, 0, 0] == 151
    assert run1("brightness_contrast", grey, {"brightness": 0, "contrast": 0})[0, 0, 0] == 128
    assert run1("brightness_contrast", solid(138, 138, 138), {"brightness": 0, "contrast": 2})[0, 0, 0] == 148


def test_saturation_zero_is_grey_and_more_saturation_spreads_channels() -> None:
    frame = sample_frame()
    grey = run1("saturation", frame, {"amount": 0})
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    assert channel_spread(run1("saturation", frame, {"amount": 2})) > channel_spread(frame)


def test_hue_shift_turns_red_towards_green_and_a_full_turn_is_identity() -> None:
    green_ish = run1("hue_shift", solid(200, 30, 30), {"degrees": 120})[0, 0]
    assert int(np.argmax(green_ish)) == 1
    frame = sample_frame()
    np.testing.assert_array_equal(run1("hue_shift", frame, {"degrees": 360}), frame)


def test_color_cycle_turns_with_time() -> None:
    frame = sample_frame()
    out = run("color_cycle", [frame] * 31, {"speed": 1.0}, fps=30.0)
    assert not np.array_equal(out[10], frame)
    assert not np.array_equal(out[10], out[20])
    np.testing.assert_array_equal(out[30], frame)  # one full turn after one second


@pytest.mark.parametrize("levels", [2, 4, 7])
def test_posterize_leaves_exactly_the_requested_levels(levels: int) -> None:
    ramp = np.tile(np.arange(256, dtype=np.uint8)[None, :, None], (4, 1, 3))
    out = run1("posterize", ramp, {"levels": levels})
    values = np.unique(out)
    assert len(values) == levels
    assert values[0] == 0 and values[-1] == 255


def test_threshold_gives_only_black_and_white() -> None:
    out = run1("threshold", sample_frame())
    assert set(np.unique(out).tolist()) == {0, 255}
    assert (out[..., 0] == out[..., 2]).all()
    inverted = run1("threshold", sample_frame(), {"invert": True})
    np.testing.assert_array_equal(inverted, 255 - out)
    assert (run1("threshold", solid(128, 128, 128), {"level": 128}) == 255).all()


def test_vignette_darkens_corners_more_than_the_centre() -> None:
    out = run1("vignette", solid(200, 200, 200), {"strength": 1.0})
    assert out[H // 2, W // 2, 0] == 200
    assert out[0, 0, 0] < 100


def test_scanlines_darken_every_nth_row_and_scroll() -> None:
    frame = solid(200, 200, 200)
    out = run1("scanlines", frame, {"spacing": 4, "thickness": 1, "darkness": 0.5})
    assert (out[0::4] == 100).all()
    np.testing.assert_array_equal(np.delete(out, np.s_[0::4], axis=0), np.delete(frame, np.s_[0::4], axis=0))
    later = run("scanlines", [frame] * 2, {"spacing": 4, "darkness": 0.5, "scroll": 30.0}, fps=30.0)[1]
    assert (later[1::4] == 100).all()


def test_film_grain_is_noise_that_moves_between_frames() -> None:
    frame = solid(128, 128, 128)
    a, b = run("film_grain", [frame, frame], {"amount": 0.3})
    assert not np.array_equal(a, b)
    assert abs(float(a.mean()) - 128) < 3
    assert float(a.astype(float).std()) > 5
    assert (a[..., 0] == a[..., 1]).all()  # monochrome by default
    colour = run1("film_grain", frame, {"monochrome": False})
    assert not (colour[..., 0] == colour[..., 1]).all()
    coarse = run1("film_grain", frame, {"size": 4})
    assert (coarse[0:4, 0:4] == coarse[0, 0]).all()


def test_blur_keeps_flat_areas_and_smooths_texture() -> None:
    flat = solid(77, 10, 200)
    np.testing.assert_array_equal(run1("blur", flat, {"radius": 12}), flat)
    frame = sample_frame()
    assert rough(run1("blur", frame, {"radius": 1})) < rough(frame) / 2
    assert rough(run1("blur", frame, {"radius": 10})) < rough(run1("blur", frame, {"radius": 1}))


def test_bloom_brightens_around_highlights_only() -> None:
    frame = solid(40, 40, 40)
    frame[20:28, 28:36] = 255
    out = run1("bloom", frame, {"threshold": 200, "radius": 4})
    assert out[24, 26, 0] > 40  # glow spills next to the highlight
    assert out[0, 0, 0] == 40  # far away nothing changes
    assert (run1("bloom", solid(100, 100, 100)) == 100).all()  # nothing above threshold, no glow


def test_sharpen_increases_local_contrast() -> None:
    frame = solid(100, 100, 100)
    frame[:, W // 2 :] = 150
    out = run1("sharpen", frame, {"amount": 2})
    assert out[0, W // 2 - 1, 0] < 100 and out[0, W // 2, 0] > 150


def test_edge_detect_finds_edges_and_ignores_flat_areas() -> None:
    assert (run1("edge_detect", solid(90, 90, 90)) == 0).all()
    frame = solid(0, 0, 0)
    frame[:, W // 2 :] = 255
    out = run1("edge_detect", frame)
    assert out[10, W // 2, 0] == 255 and out[10, 5, 0] == 0
    assert run1("edge_detect", frame, {"invert": True})[10, 5, 0] == 255


def test_emboss_makes_flat_areas_mid_grey() -> None:
    assert (run1("emboss", solid(30, 200, 90)) == 128).all()
    frame = solid(0, 0, 0)
    frame[:, W // 2 :] = 255
    assert run1("emboss", frame)[10, W // 2, 0] != 128
