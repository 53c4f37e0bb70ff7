"""Small building blocks for writing effects: per-frame factories and one-entry memos."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from pydantic import BaseModel

from artdag_effects.spec import EffectFactory, EffectParams, EffectSetup, Frame, FrameContext, FrameEffect

P = TypeVar("P", bound=EffectParams)
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def per_frame(model: type[P], fn: Callable[[Frame, P, FrameContext], Frame]) -> EffectFactory:
    """A factory for an effect without state or setup: `fn(frame, params, ctx)` per frame."""

    def factory(params: BaseModel, setup: EffectSetup) -> FrameEffect:
        model.of(params)

        def apply(frame: Frame, ctx: FrameContext) -> Frame:
            return fn(frame, model.of(ctx.params), ctx)

        return apply

    return factory


class Memo(Generic[K, V]):
    """Remembers the value built for the last key and rebuilds only when the key changes.

    One entry is enough: static parameters build once per run, bound ones change
    every frame anyway, and big coordinate maps should not pile up in a cache.
    """

    def __init__(self, build: Callable[[K], V]) -> None:
        self._build = build
        self._entry: tuple[K, V] | None = None

    def __call__(self, key: K) -> V:
        """The value for `key`, built now unless `key` equals the previous one."""
        if self._entry is None or self._entry[0] != key:
            self._entry = (key, self._build(key))
        return self._entry[1]
