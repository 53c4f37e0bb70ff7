"""Drive a numeric effect parameter from analysis data, frame by frame.

A binding turns either a curve (sample times and values, e.g. an energy
envelope) or a list of events (e.g. beat times) into a signal in 0..1, then
shifts, smooths, adds seeded noise and maps it onto the parameter's `range`:

    signal(t - offset) → one-pole smoothing → + noise → clip to 0..1 → lo + s·(hi − lo)
"""

from __future__ import annotations

import itertools
from typing import Self

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

MAX_POINTS = 100_000
MAX_RANGE = 1e12


class Binding(BaseModel):
    """How one parameter follows analysis data: a curve or events, then shaping.

    Give either `times` and `values` (a curve: linear interpolation, held at the
    ends, values normalised by their largest magnitude) or `events` (the signal
    jumps to 1 at each event and decays as exp(−Δt / decay)).
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    times: list[float] | None = Field(None, max_length=MAX_POINTS, description="curve sample times (s), ascending")
    values: list[float] | None = Field(None, max_length=MAX_POINTS, description="curve values, one per time")
    events: list[float] | None = Field(None, max_length=MAX_POINTS, description="event times (s), e.g. beats")
    decay: float = Field(0.25, gt=0, description="event decay time constant (s)")
    range: tuple[float, float] = Field((0.0, 1.0), description="the 0..1 signal maps to lo..hi (lo may exceed hi)")
    smooth: float = Field(0.0, ge=0, description="one-pole smoothing time constant (s); 0 = none")
    offset: float = Field(0.0, description="shift the signal in time (s); positive = later")
    noise: float = Field(0.0, ge=0, description="amplitude of seeded uniform noise added before mapping")

    @field_validator("times")
    @classmethod
    def _times_ascend(cls, times: list[float] | None) -> list[float] | None:
        if times is not None and any(b < a for a, b in itertools.pairwise(times)):
            raise ValueError("times must be in ascending order")
        return times

    @field_validator("range")
    @classmethod
    def _range_is_sane(cls, bounds: tuple[float, float]) -> tuple[float, float]:
        if max(abs(bounds[0]), abs(bounds[1])) > MAX_RANGE:
            raise ValueError(f"range bounds must lie within ±{MAX_RANGE:g}")
        return bounds

    @field_validator("values")
    @classmethod
    def _values_match_times(cls, values: list[float] | None, info: ValidationInfo) -> list[float] | None:
        times = info.data.get("times")
        if values is not None and times is not None and len(values) != len(times):
            raise ValueError(f"{len(values)} values for {len(times)} times: give one value per time")
        return values

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        curve = self.times is not None or self.values is not None
        if curve and self.events is not None:
            raise ValueError("give either times and values (a curve) or events, not both")
        if not curve and self.events is None:
            raise ValueError("give either times and values (a curve) or events")
        if curve and (not self.times or not self.values):
            raise ValueError("a curve needs non-empty times and values of equal length")
        return self


def _base_signal(binding: Binding, t: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    if binding.events is not None:
        events = np.sort(np.asarray(binding.events, dtype=np.float64))
        if events.size == 0:
            return np.zeros_like(t)
        last = np.searchsorted(events, t, side="right") - 1
        since = t - events[np.maximum(last, 0)]
        # The latest event at or before t is always the strongest: older ones decayed more.
        return np.where(last >= 0, np.exp(-since / binding.decay), 0.0)
    times = np.asarray(binding.times, dtype=np.float64)
    values = np.asarray(binding.values, dtype=np.float64)
    peak = float(np.max(np.abs(values)))
    normalised = values / peak if peak > 0 else np.zeros_like(values)
    return np.interp(t, times, normalised).astype(np.float64)


def _smooth(signal: npt.NDArray[np.float64], t: npt.NDArray[np.float64], tau: float) -> npt.NDArray[np.float64]:
    # A one-pole low-pass sampled at irregular times: y += (1 − e^(−Δt/τ))·(x − y).
    alpha = (1.0 - np.exp(-np.maximum(np.diff(t), 0.0) / tau)).tolist()
    xs = signal.tolist()
    out = [0.0] * len(xs)
    y = xs[0]
    out[0] = y
    for i in range(1, len(xs)):
        y += alpha[i - 1] * (xs[i] - y)
        out[i] = y
    return np.asarray(out, dtype=np.float64)


def evaluate_binding(binding: Binding, times_s: npt.ArrayLike, seed: int) -> npt.NDArray[np.float64]:
    """The bound parameter's value at each time in `times_s` (seconds, ascending), in `binding.range`.

    Deterministic: the same binding, times and seed give the same values. Noise for
    sample i depends only on the seed and i, so evaluating a longer time span
    leaves the earlier values unchanged.
    """
    t = np.asarray(times_s, dtype=np.float64).reshape(-1)
    if t.size == 0:
        return np.zeros(0, dtype=np.float64)
    signal = _base_signal(binding, t - binding.offset)
    if binding.smooth > 0:
        signal = _smooth(signal, t, binding.smooth)
    if binding.noise > 0:
        rng = np.random.default_rng(seed & 0xFFFF_FFFF_FFFF_FFFF)
        signal = signal + rng.uniform(-binding.noise, binding.noise, size=t.size)
    signal = np.clip(signal, 0.0, 1.0)
    lo, hi = binding.range
    return lo + signal * (hi - lo)
