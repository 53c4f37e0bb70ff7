"""Validate an effect step's configuration and turn it into a per-frame function.

`validate_effect_config` is what planners and gateways call on untrusted input;
`make_frame_processor` is what workers call to render. Bound parameters are
evaluated lazily in growing blocks and clamped into the parameter's range, so
analysis data can never push an effect outside what it accepts.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import annotated_types
import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from artdag_common.errors import InvalidInputError, InvalidMediaError, invalid_input
from artdag_effects.binding import Binding, evaluate_binding
from artdag_effects.registry import UnknownEffectError, get_effect
from artdag_effects.spec import EffectSetup, EffectSpec, FrameContext

FrameProcessor = Callable[[npt.NDArray[np.uint8], int], npt.NDArray[np.uint8]]

_FIRST_BLOCK = 256


def _spec(effect: str) -> EffectSpec:
    try:
        return get_effect(effect)
    except UnknownEffectError as exc:
        raise InvalidInputError(exc.message, field="effect") from None


def _validate(spec: EffectSpec, params: Any, bindings: Any) -> tuple[BaseModel, dict[str, Binding]]:
    if not isinstance(params, Mapping):
        raise InvalidInputError("params must be an object of parameter names to values", field="params")
    if not isinstance(bindings, Mapping):
        raise InvalidInputError("bindings must be an object of parameter names to bindings", field="bindings")
    fields = spec.params_model.model_fields
    numeric = spec.numeric_params()
    parsed: dict[str, Binding] = {}
    for name, raw in bindings.items():
        field = f"bindings.{name}"
        if name not in fields:
            known = ", ".join(sorted(numeric)) or "none"
            raise InvalidInputError(f"{spec.name} has no parameter {name!r} (bindable: {known})", field=field)
        if name not in numeric:
            raise InvalidInputError(f"{name!r} is not numeric and cannot be bound", field=field)
        try:
            parsed[name] = Binding.model_validate(raw)
        except ValidationError as exc:
            raise invalid_input(exc, prefix=field, unknown="unknown parameter", count_more=True) from None
    static = dict(params)
    for name, binding in parsed.items():
        # A bound parameter needs no static value; fill a required one from its range.
        if name not in static and fields[name].is_required():
            static[name] = binding.range[0]
    try:
        model = spec.params_model.model_validate(static)
    except ValidationError as exc:
        raise invalid_input(exc, prefix="params", unknown="unknown parameter", count_more=True) from None
    return model, parsed


def validate_effect_config(
    effect: str, params: dict[str, Any], bindings: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check an effect step's params and bindings; return both normalised as JSON-able dicts.

    Params come back with defaults filled. Raises `InvalidInputError` whose `field`
    names the culprit: "effect", "params.<name>" or "bindings.<name>[.<key>]".
    """
    model, parsed = _validate(_spec(effect), params, bindings)
    return model.model_dump(mode="json"), {name: b.model_dump(mode="json") for name, b in parsed.items()}


@dataclass(frozen=True)
class _Clamp:
    lo: float
    hi: float
    integer: bool

    @classmethod
    def of(cls, info: FieldInfo) -> _Clamp:
        integer = info.annotation is int
        lo, hi = -math.inf, math.inf
        for meta in info.metadata:
            if isinstance(meta, annotated_types.Ge):
                lo = max(lo, float(meta.ge))  # type: ignore[arg-type]
            elif isinstance(meta, annotated_types.Gt):
                gt = float(meta.gt)  # type: ignore[arg-type]
                lo = max(lo, math.floor(gt) + 1 if integer else math.nextafter(gt, math.inf))
            elif isinstance(meta, annotated_types.Le):
                hi = min(hi, float(meta.le))  # type: ignore[arg-type]
            elif isinstance(meta, annotated_types.Lt):
                lt = float(meta.lt)  # type: ignore[arg-type]
                hi = min(hi, math.ceil(lt) - 1 if integer else math.nextafter(lt, -math.inf))
        if integer:
            lo, hi = math.ceil(lo) if math.isfinite(lo) else lo, math.floor(hi) if math.isfinite(hi) else hi
        return cls(lo, hi, integer)

    def __call__(self, value: float) -> float | int:
        v = min(max(value, self.lo), self.hi)
        if self.integer:
            return int(min(max(math.floor(v + 0.5), self.lo), self.hi))
        return float(v)


class _BoundCurve:
    """One bound parameter's per-frame values, evaluated in blocks that double as frames arrive."""

    def __init__(self, binding: Binding, seed: int, fps: float, frame_count: int | None, clamp: _Clamp) -> None:
        self._binding = binding
        self._seed = seed
        self._fps = fps
        self._clamp = clamp
        self._size = frame_count if frame_count and frame_count > 0 else _FIRST_BLOCK
        self._values: list[float | int] = []

    def __call__(self, index: int) -> float | int:
        if index >= len(self._values):
            size = self._size
            while size <= index:
                size *= 2
            self._size = size
            # Re-evaluating from frame 0 keeps smoothing and noise identical to one pass over everything.
            raw = evaluate_binding(self._binding, np.arange(size, dtype=np.float64) / self._fps, self._seed)
            self._values = [self._clamp(v) for v in raw.tolist()]
        return self._values[index]


def _param_seed(seed: int, name: str) -> int:
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def make_frame_processor(
    effect: str,
    params: dict[str, Any],
    bindings: dict[str, Any],
    *,
    seed: int,
    width: int,
    height: int,
    fps: float,
    frame_count: int | None = None,
) -> FrameProcessor:
    """Validate a step and build `process(frame_rgb, index) -> frame_rgb` for one run.

    Call it once per frame in index order (temporal effects restart on a jump).
    Frames are (height, width, 3) uint8 RGB; a wrong shape raises `InvalidMediaError`.
    Per-frame params are the static ones with bound values substituted, rounded for
    ints and clamped into each parameter's range.
    """
    if not (width > 0 and height > 0 and fps > 0 and math.isfinite(fps)):
        raise InvalidInputError(f"bad frame geometry {width}x{height} at {fps} fps", field="frame")
    spec = _spec(effect)
    model, parsed = _validate(spec, params, bindings)
    fields = spec.params_model.model_fields
    curves = {
        name: _BoundCurve(binding, _param_seed(seed, name), fps, frame_count, _Clamp.of(fields[name]))
        for name, binding in parsed.items()
    }
    run = spec.factory(model, EffectSetup(width=width, height=height, fps=fps, seed=seed))
    expected = (height, width, 3)

    def process(frame: npt.NDArray[np.uint8], index: int) -> npt.NDArray[np.uint8]:
        if frame.shape != expected or frame.dtype != np.uint8:
            raise InvalidMediaError(
                f"{spec.name}: expected a {width}x{height} RGB uint8 frame, got {frame.shape} {frame.dtype}"
            )
        frame = np.ascontiguousarray(frame)
        frame_params = model.model_copy(update={n: c(index) for n, c in curves.items()}) if curves else model
        out = run(frame, FrameContext(index=index, time_s=index / fps, params=frame_params))
        if out.shape != expected or out.dtype != np.uint8:
            raise TypeError(f"effect {spec.name} returned {out.shape} {out.dtype} for a {expected} uint8 frame")
        return out

    return process
