"""Per-frame video measures: scene-change score and motion energy, streamed frame by frame."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

U8Array = npt.NDArray[np.uint8]
FloatArray = npt.NDArray[np.float64]

_MOTION_FLOOR = 2.0  # grey levels: mean differences below this are codec noise, not motion
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


class VideoMeasures:
    """Accumulates, per frame, the mean absolute RGB difference (scenes) and grey difference (motion)."""

    def __init__(self) -> None:
        self.previous: npt.NDArray[np.float32] | None = None
        self.previous_grey: npt.NDArray[np.float32] | None = None
        self.times: list[float] = []
        self.colour_diff: list[float] = []
        self.motion: list[float] = []

    def push(self, rgb: U8Array, when: float) -> None:
        frame = rgb.astype(np.float32)
        grey = frame @ _LUMA
        if self.previous is not None and self.previous_grey is not None:
            self.times.append(when)
            self.colour_diff.append(float(np.abs(frame - self.previous).mean()))
            self.motion.append(float(np.abs(grey - self.previous_grey).mean()))
        self.previous, self.previous_grey = frame, grey

    def scene_changes(self, threshold: float) -> dict[str, Any]:
        """Cuts where ffmpeg's scene score (min of the frame difference and its change, /100) passes `threshold`."""
        diff = np.array(self.colour_diff)
        if diff.size == 0:
            return {"times": [], "threshold": threshold}
        change = np.abs(np.diff(diff, prepend=0.0))
        score = np.minimum(diff, change) / 100.0
        cuts = np.flatnonzero(score > threshold)
        return {"times": [round(self.times[i], 4) for i in cuts], "threshold": threshold}

    def motion_result(self, frame_rate: float) -> dict[str, Any]:
        """Per-frame motion energy normalised to 0..1 (differences under 2 grey levels count as none) and its tempo."""
        motion = np.array(self.motion)
        scale = max(float(motion.max()) if motion.size else 0.0, _MOTION_FLOOR)
        values = motion / scale
        return {
            "times": [round(t, 4) for t in self.times],
            "values": [round(float(v), 4) for v in values],
            "tempo": _motion_tempo(motion, frame_rate),
        }


def _motion_tempo(motion: FloatArray, fps: float, tempo_min: float = 30.0, tempo_max: float = 200.0) -> float | None:
    """The BPM of the strongest periodicity of the motion curve, or None when there is no clear one."""
    if fps <= 0 or motion.size < 60 or motion.std() < 1e-6:
        return None
    z = (motion - motion.mean()) / motion.std()
    n_fft = 1 << int(np.ceil(np.log2(2 * z.size)))
    ac = np.fft.irfft(np.abs(np.fft.rfft(z, n=n_fft)) ** 2, n=n_fft)[: z.size]
    ac /= ac[0] * (z.size - np.arange(z.size)) / z.size  # unbiased, normalised to lag 0
    lo = max(2, int(np.ceil(60.0 * fps / tempo_max)))
    hi = min(z.size // 2, int(np.floor(60.0 * fps / tempo_min)))
    if hi <= lo:
        return None
    lag = lo + int(np.argmax(ac[lo : hi + 1]))
    if ac[lag] < 0.3:
        return None
    return round(60.0 * fps / lag, 1)
