"""Echo: blend each frame with copies from `delay`, 2·`delay`, … frames ago, each `decay` times fainter.

At most count × delay past frames are kept (≤ 60). Frames must arrive in order:
an index that does not follow the previous one clears the history.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field

from artdag_effects.imaging import to_uint8
from artdag_effects.spec import EffectParams, EffectSetup, EffectSpec, Frame, FrameContext, FrameEffect

VERSION = "1"


class EchoParams(EffectParams):
    """Number, spacing and fading of the echoes."""

    count: int = Field(3, ge=1, le=6, description="number of echoes")
    delay: int = Field(4, ge=1, le=10, description="frames between echoes")
    decay: float = Field(0.6, ge=0, le=1, description="weight of each echo relative to the one after it")


class _Echo:
    """One run: the recent input frames, newest last."""

    def __init__(self) -> None:
        self.history: deque[npt.NDArray[np.uint8]] = deque(maxlen=60)
        self.index = -2

    def __call__(self, frame: Frame, ctx: FrameContext) -> Frame:
        p = EchoParams.of(ctx.params)
        history = self.history
        if ctx.index != self.index + 1 or (history and history[0].shape != frame.shape):
            history.clear()
        self.index = ctx.index
        acc = frame.astype(np.float32)
        total = 1.0
        for k in range(1, p.count + 1):
            age = k * p.delay
            if age > len(history):
                break
            weight = p.decay**k
            acc += np.float32(weight) * history[-age]
            total += weight
        history.append(frame.copy())
        if total == 1.0:
            return frame
        acc *= np.float32(1 / total)
        return to_uint8(acc)


def _factory(params: BaseModel, setup: EffectSetup) -> FrameEffect:
    return _Echo()


EFFECT = EffectSpec(
    name="echo",
    version=VERSION,
    params_model=EchoParams,
    description="Overlay fading copies of earlier frames.",
    factory=_factory,
    temporal=True,
)
