"""Bindings: curves, events, range mapping, smoothing, offset, noise and validation."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from artdag_effects import Binding, evaluate_binding


def curve(**extra: Any) -> Binding:
    return Binding(times=[0.0, 1.0, 2.0], values=[0.0, 10.0, 5.0], **extra)


def test_a_curve_interpolates_linearly_normalised_by_its_peak_and_holds_at_the_ends() -> None:
    out = evaluate_binding(curve(), [-1.0, 0.0, 0.5, 1.0, 1.5, 2.0, 9.0], seed=0)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, [0.0, 0.0, 0.5, 1.0, 0.75, 0.5, 0.5])


def test_an_all_zero_curve_gives_zero() -> None:
    b = Binding(times=[0.0, 1.0], values=[0.0, 0.0])
    np.testing.assert_array_equal(evaluate_binding(b, [0.0, 0.5], seed=0), [0.0, 0.0])


def test_events_jump_to_one_and_decay_by_e_per_time_constant() -> None:
    b = Binding(events=[1.0, 3.0], decay=0.5)
    out = evaluate_binding(b, [0.0, 0.99, 1.0, 1.5, 2.0, 3.0, 3.5], seed=0)
    np.testing.assert_allclose(out, [0.0, 0.0, 1.0, math.exp(-1), math.exp(-2), 1.0, math.exp(-1)])


def test_events_need_not_be_sorted_and_may_be_empty() -> None:
    unsorted = evaluate_binding(Binding(events=[3.0, 1.0]), [1.0, 3.0], seed=0)
    np.testing.assert_allclose(unsorted, [1.0, 1.0])
    np.testing.assert_array_equal(evaluate_binding(Binding(events=[]), [0.0, 1.0], seed=0), [0.0, 0.0])


def test_range_maps_the_signal_including_a_reversed_range() -> None:
    t = [0.0, 0.5, 1.0]
    np.testing.assert_allclose(evaluate_binding(curve(range=(10.0, 20.0)), t, seed=0), [10.0, 15.0, 20.0])
    np.testing.assert_allclose(evaluate_binding(curve(range=(1.0, -1.0)), t, seed=0), [1.0, 0.0, -1.0])


def test_smoothing_lags_a_step_like_a_one_pole_filter() -> None:
    b = Binding(events=[0.0], decay=1e9, smooth=1.0)  # a step from 0 to 1 at t = 0 …
    t = np.arange(-1.0, 3.0, 0.001)
    out = evaluate_binding(b, t, seed=0)
    assert out[0] == 0.0

    def at(seconds: float) -> float:
        return float(out[round((seconds + 1.0) / 0.001)])

    assert at(1.0) == pytest.approx(1 - math.exp(-1), abs=2e-3)  # … reaches 63 % after one time constant
    assert at(2.0) == pytest.approx(1 - math.exp(-2), abs=2e-3)
    unsmoothed = evaluate_binding(Binding(events=[0.0], decay=1e9), t, seed=0)
    assert at(0.1) < unsmoothed[1100]


def test_offset_shifts_the_signal_later() -> None:
    t = np.linspace(0, 3, 31)
    base = evaluate_binding(Binding(events=[1.0]), t, seed=0)
    shifted = evaluate_binding(Binding(events=[1.0], offset=0.5), t, seed=0)
    np.testing.assert_allclose(shifted[5:], base[:-5], atol=1e-12)
    assert shifted[15] == pytest.approx(1.0)


def test_noise_is_seeded_bounded_and_clipped() -> None:
    b = Binding(times=[0.0, 10.0, 11.0], values=[1.0, 1.0, 2.0], noise=0.2)  # 0.5 after normalising
    t = np.linspace(0, 10, 500)
    a1, a2, other = (evaluate_binding(b, t, seed=s) for s in (7, 7, 8))
    np.testing.assert_array_equal(a1, a2)
    assert not np.array_equal(a1, other)
    assert a1.min() >= 0.3 - 1e-12 and a1.max() <= 0.7 + 1e-12  # bounded …
    loud = evaluate_binding(Binding(events=[0.0], decay=1e9, noise=0.5), t, seed=1)
    assert loud.max() == 1.0  # … and noise is clipped into 0..1 before mapping


def test_noise_for_a_sample_does_not_depend_on_how_many_follow() -> None:
    b = Binding(events=[0.5, 1.5], noise=0.3, smooth=0.1)
    t = np.arange(400) / 30
    np.testing.assert_array_equal(evaluate_binding(b, t[:100], seed=3), evaluate_binding(b, t, seed=3)[:100])


def test_empty_times_give_an_empty_result() -> None:
    assert evaluate_binding(curve(), [], seed=0).shape == (0,)


@pytest.mark.parametrize(
    ("raw", "loc"),
    [
        ({}, ()),
        ({"times": [0.0, 1.0], "values": [1.0, 2.0], "events": [0.5]}, ()),
        ({"times": [0.0, 1.0]}, ()),
        ({"times": [], "values": []}, ()),
        ({"times": [0.0, 1.0], "values": [1.0]}, ("values",)),
        ({"times": [1.0, 0.0], "values": [1.0, 2.0]}, ("times",)),
        ({"events": [0.0], "decay": 0}, ("decay",)),
        ({"events": [0.0], "smooth": -1}, ("smooth",)),
        ({"events": [0.0], "noise": -0.1}, ("noise",)),
        ({"events": [0.0], "range": [0, 1, 2]}, ("range",)),
        ({"events": [0.0], "range": [0, 1e300]}, ("range",)),
        ({"events": [float("nan")]}, ("events", 0)),
        ({"events": [0.0], "feature": "energy"}, ("feature",)),
        ({"events": [0.0] * 100_001}, ("events",)),
    ],
)
def test_invalid_bindings_are_rejected_naming_the_field(raw: dict[str, Any], loc: tuple[Any, ...]) -> None:
    with pytest.raises(ValidationError) as info:
        Binding.model_validate(raw)
    assert info.value.errors()[0]["loc"] == loc
