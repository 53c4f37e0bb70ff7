"""Small frames and a one-call runner for effect tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from artdag_effects import make_frame_processor

Frame = npt.NDArray[np.uint8]
H, W = 48, 64


def sample_frame(height: int = H, width: int = W, seed: int = 0) -> Frame:
    """A deterministic frame with gradients, colour and texture, so most effects visibly act."""
    ys, xs = np.mgrid[0:height, 0:width]
    rng = np.random.default_rng(seed)
    base = np.stack([xs * 255 // max(width - 1, 1), ys * 255 // max(height - 1, 1), (xs * 7 + ys * 5) % 256], axis=2)
    noisy = base + rng.integers(-20, 21, size=base.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def frames(count: int, height: int = H, width: int = W) -> list[Frame]:
    """`count` different frames (the texture changes every frame)."""
    return [sample_frame(height, width, seed=i) for i in range(count)]


def run(
    effect: str,
    inputs: Frame | Sequence[Frame],
    params: dict[str, Any] | None = None,
    bindings: dict[str, Any] | None = None,
    *,
    seed: int = 1,
    fps: float = 30.0,
    start: int = 0,
) -> list[Frame]:
    """Run an effect over frames with indices start, start+1, …; copies of the outputs."""
    seq = [inputs] if isinstance(inputs, np.ndarray) else list(inputs)
    h, w = seq[0].shape[:2]
    process = make_frame_processor(effect, params or {}, bindings or {}, seed=seed, width=w, height=h, fps=fps)
    return [process(frame, start + i).copy() for i, frame in enumerate(seq)]


def run1(effect: str, frame: Frame, params: dict[str, Any] | None = None, **kwargs: Any) -> Frame:
    """Run an effect on one frame (index 0)."""
    return run(effect, frame, params, **kwargs)[0]
