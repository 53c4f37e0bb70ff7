"""Exact behaviour of the geometric effects: blocks, mirrors, tiles, rotation, zoom and distortions."""

from __future__ import annotations

import numpy as np
import pytest

from .helpers import H, W, run, run1, sample_frame


def test_pixelate_gives_constant_blocks_of_the_block_mean() -> None:
    frame = sample_frame()
    out = run1("pixelate", frame, {"block_size": 8})
    for by in range(0, H, 8):
        for bx in range(0, W, 8):
            block = out[by : by + 8, bx : bx + 8].reshape(-1, 3)
            assert (block == block[0]).all()
            mean = frame[by : by + 8, bx : bx + 8].reshape(-1, 3).mean(axis=0)
            assert np.abs(block[0] - mean).max() <= 0.5 + 1e-9


def test_pixelate_handles_partial_edge_blocks() -> None:
    frame = sample_frame(37, 53)
    out = run1("pixelate", frame, {"block_size": 16})
    edge = out[32:, 48:].reshape(-1, 3)
    assert (edge == edge[0]).all()


@pytest.mark.parametrize(("axis", "flips"), [("horizontal", [1]), ("vertical", [0]), ("both", [0, 1])])
def test_mirror_is_symmetric(axis: str, flips: list[int]) -> None:
    frame = sample_frame(37, 53)
    out = run1("mirror", frame, {"axis": axis})
    for ax in flips:
        np.testing.assert_array_equal(out, np.flip(out, axis=ax))
    np.testing.assert_array_equal(out[:18, :26], frame[:18, :26])  # the kept quarter is untouched
    second = run1("mirror", frame, {"axis": axis, "keep": "second"})
    np.testing.assert_array_equal(second[-18:, -26:], frame[-18:, -26:])


def test_tile_grid_repeats_a_shrunken_copy() -> None:
    frame = sample_frame()
    out = run1("tile_grid", frame, {"rows": 2, "cols": 2})
    tile = out[:24, :32]
    for ty in (0, 24):
        for tx in (0, 32):
            np.testing.assert_array_equal(out[ty : ty + 24, tx : tx + 32], tile)
    np.testing.assert_array_equal(tile, frame[::2, ::2])
    three = run1("tile_grid", frame, {"rows": 3, "cols": 4})
    np.testing.assert_array_equal(three[:16, :16], three[32:, 48:])


def test_rotate_180_twice_is_identity_and_90_turns_counter_clockwise() -> None:
    frame = sample_frame()
    once = run1("rotate", frame, {"degrees": 180})
    np.testing.assert_array_equal(once, frame[::-1, ::-1])
    np.testing.assert_array_equal(run1("rotate", once, {"degrees": 180}), frame)
    square = sample_frame(32, 32)
    np.testing.assert_array_equal(run1("rotate", square, {"degrees": 90}), np.rot90(square))


def test_rotate_fills_uncovered_corners_with_the_background() -> None:
    out = run1("rotate", sample_frame(), {"degrees": 45, "background": [255, 0, 255]})
    assert out[0, 0].tolist() == [255, 0, 255]


def test_rotate_spins_over_time() -> None:
    frame = sample_frame()
    out = run("rotate", [frame] * 2, {"degrees": 0, "spin": 2700}, fps=15.0)  # 180° per frame
    np.testing.assert_array_equal(out[0], frame)
    np.testing.assert_array_equal(out[1], frame[::-1, ::-1])


def test_zoom_magnifies_about_the_centre() -> None:
    frame = sample_frame(33, 33)
    out = run1("zoom", frame, {"amount": 2.0})
    np.testing.assert_array_equal(out[16, 16], frame[16, 16])  # the fixed point
    np.testing.assert_array_equal(out[16::2, 16::2], frame[16:25, 16:25])  # every other pixel is an original one
    corner = run1("zoom", frame, {"amount": 2.0, "center_x": 0, "center_y": 0})
    np.testing.assert_array_equal(corner[::2, ::2], frame[:17, :17])


def test_shake_moves_the_whole_picture_by_whole_pixels() -> None:
    frame = sample_frame()
    outs = run("shake", [frame] * 4, {"amount": 0.1})
    assert len({o.tobytes() for o in outs}) > 1
    for out in outs:  # each output is the frame shifted: some row of it appears unchanged
        assert any(np.array_equal(out[H // 2, 10:50], frame[y, x : x + 40]) for y in range(H) for x in range(W - 40))
    held = run("shake", [frame] * 4, {"amount": 0.1, "hold": 4})
    assert len({o.tobytes() for o in held}) == 1


@pytest.mark.parametrize("mode", ["horizontal", "vertical", "ripple"])
def test_wave_distorts_and_moves_with_time(mode: str) -> None:
    frame = sample_frame()
    a, b = run("wave", [frame] * 2, {"mode": mode, "amplitude": 0.05, "speed": 5.0})
    assert not np.array_equal(a, frame)
    assert not np.array_equal(a, b)


def test_horizontal_wave_only_slides_rows() -> None:
    frame = np.tile(np.arange(W, dtype=np.uint8)[None, :, None] * 4, (H, 1, 3))
    frame[:, :, 1] = np.arange(H, dtype=np.uint8)[:, None] * 5  # each row has its own green
    out = run1("wave", frame, {"amplitude": 0.05})
    np.testing.assert_array_equal(out[..., 1], frame[..., 1])


def test_swirl_twists_inside_the_radius_only() -> None:
    frame = sample_frame()
    out = run1("swirl", frame, {"strength": 4, "radius": 0.4})
    assert not np.array_equal(out[14:34, 22:42], frame[14:34, 22:42])
    np.testing.assert_array_equal(out[:4, :4], frame[:4, :4])
    np.testing.assert_array_equal(out[-4:, -4:], frame[-4:, -4:])


def test_kaleidoscope_makes_mirrored_wedges() -> None:
    frame = sample_frame(41, 41)
    out = run1("kaleidoscope", frame, {"segments": 4})
    assert not np.array_equal(out, frame)
    # With four wedges mirrored about the axes the picture is left-right and top-bottom symmetric.
    np.testing.assert_allclose(out.astype(int), out[::-1, ::-1].astype(int), atol=1)
    spun = run("kaleidoscope", [frame] * 2, {"spin": 90.0})
    assert not np.array_equal(spun[0], spun[1])


def test_rgb_split_moves_red_and_blue_apart_and_keeps_green() -> None:
    frame = sample_frame()
    out = run1("rgb_split", frame, {"distance": 3 / W})
    np.testing.assert_array_equal(out[..., 1], frame[..., 1])
    np.testing.assert_array_equal(out[:, 3:, 0], frame[:, :-3, 0])
    np.testing.assert_array_equal(out[:, :-3, 2], frame[:, 3:, 2])
    up = run1("rgb_split", frame, {"distance": 3 / W, "angle": 90})
    np.testing.assert_array_equal(up[:-3, :, 0], frame[3:, :, 0])
