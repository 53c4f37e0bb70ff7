"""Incremental per-frame envelopes of a mono signal: onset strength, RMS energy, band energies.

Each accumulator takes blocks of samples in order and keeps only its per-frame
values (a few floats per frame), never the waveform, so memory grows with the
number of frames and not with the number of samples.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
Float64Array = npt.NDArray[np.float64]

ONSET_FFT = 1024
ONSET_HOP = 256
# Onset bands: mel-spaced edges from 30 Hz up to Nyquist, merged so each band holds at least one bin.
_ONSET_BANDS = 40
_LOW_BAND_HZ = 180.0  # bands below this make the "low" onset envelope (kick drums, bass notes)
_LOG_GAIN = 100.0


def _mel(f: Float64Array) -> Float64Array:
    return 2595.0 * np.log10(1.0 + f / 700.0)


def _mel_inv(m: Float64Array) -> Float64Array:
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


class Framer:
    """Cuts a stream of samples into overlapping frames of `size` every `hop` samples.

    Frame k is centred on sample ``k * hop + offset`` (the stream is padded with
    zeros at both ends); a stream of n samples gives ``ceil(n / hop)`` frames.
    """

    def __init__(self, size: int, hop: int, offset: int = 0) -> None:
        self.size = size
        self.hop = hop
        self.buffer: FloatArray = np.zeros(size // 2 - offset, dtype=np.float32)
        self.total = 0
        self.emitted = 0
        self.offset = offset

    def push(self, samples: FloatArray) -> FloatArray:
        """Frames completed by `samples`, shape (k, size)."""
        self.total += samples.size
        self.buffer = np.concatenate([self.buffer, samples.astype(np.float32, copy=False)])
        return self._take()

    def finish(self) -> FloatArray:
        """The frames whose centres fall on the stream, completed with trailing zeros."""
        wanted = -(-self.total // self.hop)
        missing = wanted - self.emitted
        if missing <= 0:
            return np.zeros((0, self.size), dtype=np.float32)
        need = (missing - 1) * self.hop + self.size
        pad = max(0, need - self.buffer.size)
        self.buffer = np.concatenate([self.buffer, np.zeros(pad, dtype=np.float32)])
        return self._take()[:missing]

    def _take(self) -> FloatArray:
        count = (self.buffer.size - self.size) // self.hop + 1 if self.buffer.size >= self.size else 0
        if count <= 0:
            return np.zeros((0, self.size), dtype=np.float32)
        view = np.lib.stride_tricks.sliding_window_view(self.buffer, self.size)[:: self.hop][:count]
        frames = np.array(view)
        self.buffer = self.buffer[count * self.hop :]
        self.emitted += count
        return frames


class OnsetEnvelope:
    """Log-magnitude spectral flux on mel-spaced bands, every `ONSET_HOP` samples.

    Keeps two envelopes: the flux summed over all bands (`strength`) and over the
    bands below 180 Hz (`low`, used for accents and downbeats).
    """

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.fps = sample_rate / ONSET_HOP
        self.framer = Framer(ONSET_FFT, ONSET_HOP)
        self.window = np.hanning(ONSET_FFT + 1)[:-1].astype(np.float32) / (ONSET_FFT / 4)
        freqs = _mel_inv(np.linspace(_mel(np.array(30.0)), _mel(np.array(sample_rate / 2)), _ONSET_BANDS + 1))
        bins = np.unique(np.round(freqs * ONSET_FFT / sample_rate).astype(np.int64))
        self.starts = bins[:-1]
        self.widths = np.diff(bins).astype(np.float32)
        self.n_low = int(np.searchsorted(bins[1:] * sample_rate / ONSET_FFT, _LOW_BAND_HZ, side="right"))
        self.previous: FloatArray | None = None
        self.strength: list[FloatArray] = []
        self.low: list[FloatArray] = []

    def push(self, samples: FloatArray) -> None:
        self._process(self.framer.push(samples))

    def finish(self) -> tuple[FloatArray, FloatArray]:
        """The whole envelopes (strength, low), one value per frame."""
        self._process(self.framer.finish())
        empty = np.zeros(0, dtype=np.float32)
        strength = np.concatenate(self.strength) if self.strength else empty
        low = np.concatenate(self.low) if self.low else empty
        return strength, low

    def _process(self, frames: FloatArray) -> None:
        if not len(frames):
            return
        mag = np.abs(np.fft.rfft(frames * self.window, axis=1)).astype(np.float32)
        bands = np.add.reduceat(mag, self.starts, axis=1)[:, : len(self.widths)] / self.widths
        logs = np.log1p(_LOG_GAIN * bands)
        before = np.vstack([np.zeros_like(logs[:1]) if self.previous is None else self.previous, logs[:-1]])
        self.previous = logs[-1:]
        rise = np.maximum(logs - before, 0.0)
        self.strength.append(rise.sum(axis=1).astype(np.float32))
        self.low.append(rise[:, : self.n_low].sum(axis=1).astype(np.float32))


class WindowEnvelopes:
    """RMS energy and band amplitudes over consecutive `hop`-sample windows.

    Window k covers samples ``[k * hop, (k + 1) * hop)``; its time is its centre.
    Band amplitudes come from an FFT of at least 2048 samples centred on the window.
    """

    def __init__(self, sample_rate: int, hop: int, bands: dict[str, tuple[float, float]] | None) -> None:
        self.hop = hop
        self.rest: FloatArray = np.zeros(0, dtype=np.float32)
        self.energy: list[Float64Array] = []
        self.band_names = list(bands or {})
        self.band_values: list[FloatArray] = []
        self.framer: Framer | None = None
        if bands:
            size = max(2048, 1 << int(np.ceil(np.log2(hop))))
            self.framer = Framer(size, hop, offset=hop // 2)
            self.window = np.hanning(size + 1)[:-1].astype(np.float32) / (size / 4)
            freqs = np.fft.rfftfreq(size, 1.0 / sample_rate)
            self.mask = np.stack([(freqs >= lo) & (freqs < hi) for lo, hi in bands.values()], axis=1).astype(np.float32)

    def push(self, samples: FloatArray) -> None:
        data = np.concatenate([self.rest, samples])
        count = data.size // self.hop
        if count:
            squares = np.square(data[: count * self.hop], dtype=np.float64)
            self.energy.append(np.sqrt(squares.reshape(count, self.hop).mean(axis=1)))
        self.rest = data[count * self.hop :]
        if self.framer is not None:
            self._bands(self.framer.push(samples))

    def finish(self) -> tuple[Float64Array, FloatArray]:
        """RMS per window (shape (k,)) and band amplitudes (shape (k, bands))."""
        if self.rest.size >= self.hop / 2:  # a last partial window counts if at least half full
            self.energy.append(np.sqrt(np.array([np.mean(np.square(self.rest, dtype=np.float64))])))
        energy = np.concatenate(self.energy) if self.energy else np.zeros(0)
        if self.framer is None:
            return energy, np.zeros((energy.size, 0), dtype=np.float32)
        self._bands(self.framer.finish())
        bands = np.concatenate(self.band_values) if self.band_values else np.zeros((0, len(self.band_names)))
        return energy, bands[: energy.size].astype(np.float32)

    def _bands(self, frames: FloatArray) -> None:
        if len(frames):
            power = np.square(np.abs(np.fft.rfft(frames * self.window, axis=1))).astype(np.float32)
            self.band_values.append(np.sqrt(power @ self.mask))
