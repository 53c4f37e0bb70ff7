"""validate_effect_config and make_frame_processor: errors that name the field, bound parameters per frame."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from artdag_common.errors import InvalidInputError, InvalidMediaError
from artdag_effects import make_frame_processor, validate_effect_config

from .helpers import H, W, frames, run, sample_frame


def test_validate_fills_defaults_and_normalises_bindings() -> None:
    params, bindings = validate_effect_config("rotate", {"degrees": 30}, {"spin": {"events": [1.0]}})
    assert params == {"degrees": 30.0, "spin": 0.0, "background": [0, 0, 0]}
    assert bindings == {
        "spin": {
            "times": None,
            "values": None,
            "events": [1.0],
            "decay": 0.25,
            "range": [0.0, 1.0],
            "smooth": 0.0,
            "offset": 0.0,
            "noise": 0.0,
        }
    }


@pytest.mark.parametrize(
    ("effect", "params", "bindings", "field", "words"),
    [
        ("nope", {}, {}, "effect", "invert"),
        ("invrt", {}, {}, "effect", "did you mean 'invert'"),
        ("invert", {"bogus": 1}, {}, "params.bogus", "unknown parameter"),
        ("invert", {"intensity": 2}, {}, "params.intensity", "less than or equal to 1"),
        ("invert", {"intensity": "lots"}, {}, "params.intensity", "number"),
        ("rotate", {"background": [0, 0, 300]}, {}, "params.background.2", "255"),
        ("invert", [], {}, "params", "object"),
        ("invert", {}, [], "bindings", "object"),
        ("invert", {}, {"bogus": {"events": []}}, "bindings.bogus", "no parameter 'bogus'"),
        ("mirror", {}, {"axis": {"events": []}}, "bindings.axis", "not numeric"),
        ("threshold", {}, {"invert": {"events": []}}, "bindings.invert", "not numeric"),
        ("invert", {}, {"intensity": {"events": [], "range": "wide"}}, "bindings.intensity.range", "tuple"),
        ("invert", {}, {"intensity": {"events": [], "decay": -1}}, "bindings.intensity.decay", "greater than 0"),
        ("invert", {}, {"intensity": {}}, "bindings.intensity", "times and values"),
        ("invert", {}, {"intensity": {"events": [], "source": "x"}}, "bindings.intensity.source", ""),
        ("invert", {}, {"intensity": "loud"}, "bindings.intensity", ""),
    ],
)
def test_invalid_configs_raise_invalid_input_naming_the_field(
    effect: str, params: Any, bindings: Any, field: str, words: str
) -> None:
    with pytest.raises(InvalidInputError) as info:
        validate_effect_config(effect, params, bindings)
    assert info.value.field == field
    assert words in info.value.message


def test_bound_brightness_is_brighter_on_events() -> None:
    grey = np.full((H, W, 3), 100, dtype=np.uint8)
    out = run(
        "brightness_contrast",
        [grey] * 12,
        {"contrast": 1.0},
        {"brightness": {"events": [0.2], "decay": 0.05, "range": [0.0, 0.4]}},
        fps=10.0,
    )
    means = [float(f.mean()) for f in out]
    assert means[0] == means[1] == 100.0  # before the event
    assert means[2] == pytest.approx(100 + 0.4 * 255, abs=0.6)  # at the event (frame 2 = 0.2 s)
    assert means[2] > means[3] > means[4] > means[11]
    assert means[11] == pytest.approx(100.0, abs=0.6)


def test_bound_ints_are_rounded_and_values_are_clamped_into_the_parameter_range() -> None:
    seen: list[Any] = []
    frame = sample_frame()
    # levels (2..64) follows 0 → 1000 over two seconds: rounded to ints and capped at 64.
    binding = {"levels": {"times": [0.0, 2.0], "values": [0.0, 1.0], "range": [0.0, 1000.0]}}
    process = make_frame_processor("posterize", {}, binding, seed=0, width=W, height=H, fps=10.0)
    for index in (0, 1, 20):
        out = process(frame, index)
        seen.append(len(np.unique(out[..., 0])))
    assert seen[0] == 2  # 0 → clamped up to 2 levels
    assert seen[1] <= 50  # 1000 · 0.05 = 50 levels at most
    assert seen[2] <= 64


def test_bound_curves_are_the_same_whether_or_not_the_frame_count_is_known() -> None:
    binding = {"intensity": {"events": [1.0, 9.0, 20.0], "noise": 0.3, "smooth": 0.2}}
    frame = sample_frame()
    a = make_frame_processor("invert", {}, binding, seed=5, width=W, height=H, fps=30.0)
    b = make_frame_processor("invert", {}, binding, seed=5, width=W, height=H, fps=30.0, frame_count=2000)
    for index in (0, 10, 255, 256, 700, 1500):
        np.testing.assert_array_equal(a(frame, index), b(frame, index))


def test_the_seed_changes_bound_noise() -> None:
    binding = {"intensity": {"times": [0.0], "values": [0.5], "noise": 0.5}}
    frame = sample_frame()
    outs = [run("invert", [frame] * 5, {}, binding, seed=s) for s in (1, 1, 2)]
    assert all(np.array_equal(x, y) for x, y in zip(outs[0], outs[1], strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(outs[0], outs[2], strict=True))


def test_a_frame_of_the_wrong_shape_is_invalid_media() -> None:
    process = make_frame_processor("invert", {}, {}, seed=0, width=W, height=H, fps=30.0)
    with pytest.raises(InvalidMediaError):
        process(np.zeros((H, W + 1, 3), dtype=np.uint8), 0)
    with pytest.raises(InvalidMediaError):
        process(np.zeros((H, W, 3), dtype=np.float32), 0)


def test_bad_geometry_and_unknown_effects_are_invalid_input() -> None:
    with pytest.raises(InvalidInputError) as info:
        make_frame_processor("invert", {}, {}, seed=0, width=0, height=H, fps=30.0)
    assert info.value.field == "frame"
    with pytest.raises(InvalidInputError) as info:
        make_frame_processor("nope", {}, {}, seed=0, width=W, height=H, fps=30.0)
    assert info.value.field == "effect"


def test_non_contiguous_frames_are_accepted() -> None:
    big = sample_frame(H, 2 * W)
    out = run("invert", big[:, ::2])[0]
    np.testing.assert_array_equal(out, 255 - big[:, ::2])


def test_processors_are_independent() -> None:
    seq = frames(4)
    first = run("trails", seq)
    run("trails", seq[::-1])
    np.testing.assert_array_equal(run("trails", seq)[-1], first[-1])
