"""Onset times: peaks of the onset-strength envelope above a moving threshold."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

LATENCY_S = 0.0073
"""Added to envelope-peak times to land on the true onset (measured on clicks and tone bursts)."""
_MAX_S = 0.03  # a peak is the maximum within ±30 ms
_MEAN_S = 0.1  # …and exceeds the mean within ±100 ms
_DELTA = 0.08  # …by this fraction of the envelope's 99th percentile
_WAIT_S = 0.03  # …and comes at least 30 ms after the previous onset


def parabolic_peak(env: FloatArray, k: int) -> float:
    """Sub-frame position of the peak at frame `k` by fitting a parabola through its neighbours."""
    if k <= 0 or k >= env.size - 1:
        return float(k)
    a, c, e = env[k - 1], env[k], env[k + 1]
    denom = a - 2 * c + e
    shift = 0.5 * (a - e) / denom if denom < 0 else 0.0
    return k + float(np.clip(shift, -0.5, 0.5))


def onset_peaks(env: FloatArray, fps: float) -> FloatArray:
    """Onset times in seconds picked from the envelope `env` sampled at `fps`."""
    if env.size < 3:
        return np.zeros(0)
    scale = float(np.percentile(env, 99))
    if scale <= 0:
        return np.zeros(0)
    reach = max(1, round(_MAX_S * fps))
    padded = np.pad(env, reach, mode="constant", constant_values=-np.inf)
    local_max = np.lib.stride_tricks.sliding_window_view(padded, 2 * reach + 1).max(axis=1)
    span = max(1, round(_MEAN_S * fps))
    csum = np.concatenate([[0.0], np.cumsum(env)])
    idx = np.arange(env.size)
    lo, hi = np.clip(idx - span, 0, env.size), np.clip(idx + span + 1, 0, env.size)
    mean = (csum[hi] - csum[lo]) / (hi - lo)
    candidates = np.flatnonzero((env >= local_max) & (env >= mean + _DELTA * scale) & (env > 0))
    wait = max(1, round(_WAIT_S * fps))
    picked: list[float] = []
    last = -wait
    for k in candidates:
        if k - last >= wait:
            picked.append(parabolic_peak(env, int(k)) / fps + LATENCY_S)
            last = int(k)
    return np.array(picked)
