"""The contract between an effect and whoever runs it.

An effect is an `EffectSpec`: a name, a version, a pydantic model of its
parameters and a factory. The factory builds one `FrameEffect` per run (so an
effect may precompute coordinate maps and keep state across frames); the runner
then calls it once per decoded frame, in order, with that frame's parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Protocol, Self

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

Frame = npt.NDArray[np.uint8]
"""An (H, W, 3) uint8 RGB image, C-contiguous."""

Channel = Annotated[int, Field(ge=0, le=255)]
Rgb = tuple[Channel, Channel, Channel]
"""A colour parameter: three 0..255 integers (JSON: a list of three numbers)."""


class EffectParams(BaseModel):
    """Base of every built-in effect's parameter model: strict, finite, immutable, hashable."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    @classmethod
    def of(cls, params: BaseModel) -> Self:
        """Narrow the `BaseModel` a runner hands over to this effect's own model."""
        if not isinstance(params, cls):
            raise TypeError(f"expected {cls.__qualname__}, got {type(params).__qualname__}")
        return params


@dataclass(frozen=True)
class EffectSetup:
    """What an effect may know before the first frame: the frame size, the rate and the seed.

    `seed` is derived from the step id; every random choice an effect makes comes from
    `np.random.default_rng` seeded with it (see `artdag_effects.imaging.rng_for`).
    """

    width: int
    height: int
    fps: float
    seed: int


@dataclass(frozen=True)
class FrameContext:
    """Per-frame input besides the pixels: the frame index, its time and its parameters.

    `params` is an instance of the effect's `params_model` with any bound values
    already substituted for this frame.
    """

    index: int
    time_s: float
    params: BaseModel


class FrameEffect(Protocol):
    """One run of an effect: called once per frame, in order.

    `frame` is (H, W, 3) uint8 RGB and C-contiguous; the effect must not modify it.
    It returns an array of the same shape and dtype that the caller may keep (a new
    array, or `frame` itself when the effect leaves it unchanged).
    """

    def __call__(self, frame: Frame, ctx: FrameContext) -> Frame: ...


EffectFactory = Callable[[BaseModel, EffectSetup], FrameEffect]
"""Builds a per-run `FrameEffect` from the run's static parameters and setup."""


def _is_numeric(annotation: object) -> bool:
    return annotation is int or annotation is float


@dataclass(frozen=True)
class EffectSpec:
    """An installed effect: what it is called, what it takes and how to build it.

    Bump `version` whenever the output for the same input changes, so cached
    results made by the old code are not reused.
    """

    name: str
    version: str
    params_model: type[BaseModel]
    description: str
    factory: EffectFactory
    temporal: bool = False
    pointwise: bool = False
    """Each output pixel is a function of that pixel's RGB and the static params alone (not of its
    place, its neighbours, the time or the seed): a run of such effects can be folded into one
    colour table, computed by the effects themselves over every colour (see the executor's CHAIN)."""

    def numeric_params(self) -> frozenset[str]:
        """Names of the int and float parameters: the ones a `Binding` may drive."""
        return frozenset(
            name for name, field in self.params_model.model_fields.items() if _is_numeric(field.annotation)
        )
