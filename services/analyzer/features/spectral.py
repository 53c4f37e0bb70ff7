"""Incremental per-frame envelopes of a mono signal: onset strength, RMS energy, band energies.

Each accumulator takes blocks of samples in order and keeps only its per-frame
values (a few floats per frame), never the waveform, so memory grows with the
number of frames and not with the number of samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
Float64Array = npt.NDArray[np.float64]

ONSET_FFT = 1024
ONSET_HOP = 256
# Onset bands: mel-spaced edges from 30 Hz up to Nyquist, merged so each band holds at least one bin.
_ONSET_BANDS = 40
_LOW_BAND_HZ = 180.0  # bands below this make the "low" onset envelope (kick drums, bass notes)
_HIGH_BAND_HZ = 5000.0  # bands above this make the "high" one (hi-hats, cymbals); between them is "mid" (snare, chords)
_LOG_GAIN = 100.0


def rfft_rows(frames: npt.NDArray[np.floating]) -> npt.NDArray[np.complexfloating]:
    """Real FFT of each row, in the input's precision: SciPy's pocketfft is 2–3× faster than NumPy's here."""
    from scipy import fft  # on first use: the import costs 0.35 s that the analyzer's start need not pay

    spectrum: npt.NDArray[np.complexfloating] = fft.rfft(frames, axis=1)
    return spectrum


def warm_up() -> None:
    """Load what the first analysis would otherwise wait for (SciPy's FFT), off the request path."""
    rfft_rows(np.zeros((1, 8), dtype=np.float32))


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


@dataclass(frozen=True)
class OnsetBands:
    """Onset strength per frame over the whole spectrum and in three registers.

    Drums sort themselves into the registers (kick in `low`, snare in `mid`, hats in
    `high`), which is what tells a beat from its subdivisions and its bar.
    """

    fps: float
    full: Float64Array
    low: Float64Array
    mid: Float64Array
    high: Float64Array


class OnsetEnvelope:
    """Log-magnitude spectral flux on mel-spaced bands, every `ONSET_HOP` samples.

    Keeps four envelopes: the flux summed over all bands, over the bands below
    180 Hz, between 180 Hz and 5 kHz, and above 5 kHz (see `OnsetBands`).
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
        band_tops = bins[1:] * sample_rate / ONSET_FFT
        self.n_low = int(np.searchsorted(band_tops, _LOW_BAND_HZ, side="right"))
        self.n_mid = int(np.searchsorted(band_tops, _HIGH_BAND_HZ, side="right"))
        self.previous: FloatArray | None = None
        self.registers: list[FloatArray] = []  # per block: (frames, 3) flux in low, mid, high

    def push(self, samples: FloatArray) -> None:
        self._process(self.framer.push(samples))

    def finish(self) -> OnsetBands:
        """The whole envelopes, one value per frame."""
        self._process(self.framer.finish())
        flux = np.concatenate(self.registers).astype(np.float64) if self.registers else np.zeros((0, 3))
        low, mid, high = flux[:, 0], flux[:, 1], flux[:, 2]
        return OnsetBands(self.fps, low + mid + high, low, mid, high)

    def _process(self, frames: FloatArray) -> None:
        if not len(frames):
            return
        mag = np.abs(rfft_rows(frames * self.window)).astype(np.float32)
        bands = np.add.reduceat(mag, self.starts, axis=1)[:, : len(self.widths)] / self.widths
        logs = np.log1p(_LOG_GAIN * bands)
        before = np.vstack([np.zeros_like(logs[:1]) if self.previous is None else self.previous, logs[:-1]])
        self.previous = logs[-1:]
        rise = np.maximum(logs - before, 0.0)
        low, mid, high = rise[:, : self.n_low], rise[:, self.n_low : self.n_mid], rise[:, self.n_mid :]
        registers = np.stack([low.sum(axis=1), mid.sum(axis=1), high.sum(axis=1)], axis=1)
        self.registers.append(registers.astype(np.float32))


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
            power = np.square(np.abs(rfft_rows(frames * self.window))).astype(np.float32)
            self.band_values.append(np.sqrt(power @ self.mask))
