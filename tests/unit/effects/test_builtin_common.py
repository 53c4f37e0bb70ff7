"""What every built-in effect must do: keep shape and dtype, act, be deterministic, leave input alone."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from artdag_effects import available_effects, get_effect

from .helpers import frames, run, sample_frame

EFFECTS = sorted(available_effects())
SEEDED = ["film_grain", "shake", "datamosh"]

# Parameters under which each effect must return its input unchanged (frame after frame).
NEUTRAL: dict[str, dict[str, Any]] = {
    "identity": {},
    "invert": {"intensity": 0},
    "grayscale": {"intensity": 0},
    "sepia": {"intensity": 0},
    "brightness_contrast": {"brightness": 0, "contrast": 1},
    "saturation": {"amount": 1},
    "hue_shift": {"degrees": 0},
    "color_cycle": {"speed": 0, "phase": 0},
    "pixelate": {"block_size": 1},
    "blur": {"radius": 0},
    "bloom": {"intensity": 0},
    "sharpen": {"amount": 0},
    "edge_detect": {"intensity": 0},
    "emboss": {"intensity": 0},
    "vignette": {"strength": 0},
    "film_grain": {"amount": 0},
    "scanlines": {"darkness": 0},
    "rotate": {"degrees": 0},
    "zoom": {"amount": 1},
    "shake": {"amount": 0},
    "wave": {"amplitude": 0},
    "swirl": {"strength": 0},
    "rgb_split": {"distance": 0},
    "pixel_sort": {"low": 255, "high": 0},
    "datamosh": {"intensity": 0},
    "strobe": {"duty": 1},
    "echo": {"decay": 0},
    "trails": {"persistence": 0},
    "tile_grid": {"rows": 1, "cols": 1},
    "fisheye": {"strength": 0},
    "crt": {"scanlines": 0, "vignette": 0},
    "color_adjust": {"brightness": 0, "contrast": 1, "saturation": 1, "gamma": 1},
}


@pytest.mark.parametrize("name", EFFECTS)
@pytest.mark.parametrize("size", [(48, 64), (37, 53)])
def test_shape_and_dtype_are_preserved_and_the_input_is_untouched(name: str, size: tuple[int, int]) -> None:
    seq = frames(6, *size)
    before = [f.copy() for f in seq]
    out = run(name, seq)
    for frame, original, result in zip(seq, before, out, strict=True):
        np.testing.assert_array_equal(frame, original)
        assert result.shape == (*size, 3)
        assert result.dtype == np.uint8


@pytest.mark.parametrize("name", [n for n in EFFECTS if n != "identity"])
def test_defaults_change_the_picture(name: str) -> None:
    seq = frames(8)
    out = run(name, seq)
    assert any(not np.array_equal(a, b) for a, b in zip(seq, out, strict=True))


@pytest.mark.parametrize("name", EFFECTS)
def test_same_inputs_and_seed_give_identical_output(name: str) -> None:
    seq = frames(6)
    for a, b in zip(run(name, seq, seed=42), run(name, seq, seed=42), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", SEEDED)
def test_seeded_effects_depend_on_the_seed(name: str) -> None:
    seq = frames(6)
    a, b = run(name, seq, seed=1), run(name, seq, seed=2)
    assert any(not np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_unseeded_effects_ignore_the_seed() -> None:
    seq = frames(3)
    for name in ("invert", "blur", "kaleidoscope", "pixel_sort"):
        for a, b in zip(run(name, seq, seed=1), run(name, seq, seed=2), strict=True):
            np.testing.assert_array_equal(a, b)


def test_every_effect_has_neutral_parameters_or_is_listed_as_having_none() -> None:
    without = {"kaleidoscope", "mirror", "posterize", "threshold", "ascii_art", "ascii_zones", "neon_glow"}
    assert set(NEUTRAL) | without == set(EFFECTS)


@pytest.mark.parametrize("name", sorted(NEUTRAL))
def test_neutral_parameters_leave_frames_unchanged(name: str) -> None:
    seq = frames(6)
    for frame, result in zip(seq, run(name, seq, NEUTRAL[name]), strict=True):
        np.testing.assert_array_equal(result, frame)


@pytest.mark.parametrize("name", sorted(n for n in EFFECTS if get_effect(n).temporal))
def test_temporal_effects_depend_on_previous_frames(name: str) -> None:
    seq = frames(11)
    other = [255 - f for f in seq[:10]] + [seq[10]]
    # At 30 fps and 10 Hz a strobe cycle is 3 frames: frame 9 shows, frame 10 is "off" and holds frame 9.
    params = {"mode": "hold", "rate": 10.0, "duty": 0.2} if name == "strobe" else {}
    assert not np.array_equal(run(name, seq, params)[-1], run(name, other, params)[-1])


@pytest.mark.parametrize("name", EFFECTS)
def test_every_numeric_parameter_can_be_bound(name: str) -> None:
    spec = get_effect(name)
    bindings = {p: {"events": [0.05], "decay": 0.1, "range": [-1e6, 1e6]} for p in spec.numeric_params()}
    out = run(name, frames(4), {}, bindings)  # extremes are clamped into each parameter's range
    assert all(f.shape == (48, 64, 3) for f in out)


def test_a_single_frame_runs_at_a_large_index() -> None:
    frame = sample_frame()
    for name in EFFECTS:
        assert run(name, frame, start=10_000)[0].shape == frame.shape
