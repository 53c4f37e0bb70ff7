"""`analyze_file`: one streaming pass over a media file, then the requested features from its envelopes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from artdag_common.errors import InvalidInputError, InvalidMediaError
from artdag_common.media_limits import InputLimits
from artdag_common.operations import AUDIO_FEATURES, VIDEO_FEATURES
from services.analyzer.features.beats import track_beats
from services.analyzer.features.decode import SAMPLE_RATE, find_streams, open_media, stream_media
from services.analyzer.features.onsets import onset_peaks
from services.analyzer.features.params import AnalysisParams
from services.analyzer.features.spectral import ONSET_HOP, OnsetBands, OnsetEnvelope, WindowEnvelopes
from services.analyzer.features.video import VideoMeasures

ANALYZER_VERSION = "3"
"""Bump whenever any result could change: it is part of every analysis id, so stale results are never reused."""

_ALIASES = {"tempo": "beats"}
_BAND_FLOOR = 1e-3  # a band whose peak is 60 dB under the loudest band's peak counts as silent

FloatArray = npt.NDArray[np.float64]


def _round(values: FloatArray | Sequence[float], digits: int = 4) -> list[float]:
    return [float(v) for v in np.round(np.asarray(values, dtype=np.float64), digits)]


def resolve_features(features: Sequence[str]) -> list[str]:
    """The sorted, de-aliased feature names; unknown names are an `InvalidInputError` on `features`."""
    if isinstance(features, str) or not features:
        raise InvalidInputError("give a non-empty list of feature names", field="features")
    known = AUDIO_FEATURES | VIDEO_FEATURES
    unknown = sorted({f for f in features if f not in known})
    if unknown:
        raise InvalidInputError(f"unknown feature {unknown[0]!r} (known: {', '.join(sorted(known))})", field="features")
    return sorted({_ALIASES.get(f, f) for f in features})


def analyze_file(
    path: Path,
    features: Sequence[str],
    params: AnalysisParams,
    progress: Callable[[float], None] | None = None,
    limits: InputLimits = InputLimits(),
) -> dict[str, Any]:
    """Compute `features` of the media at `path` in one streaming pass; see the package docstring for the schema.

    Raises `InvalidInputError` (field "features") for unknown names and `InvalidMediaError`
    for media that cannot be read or lacks the stream a feature needs.
    """
    wanted = resolve_features(features)
    audio_wanted = [f for f in wanted if f in AUDIO_FEATURES]
    video_wanted = [f for f in wanted if f in VIDEO_FEATURES]
    with open_media(str(path), limits) as container:
        streams = find_streams(container)
        if audio_wanted and streams.audio is None:
            raise InvalidMediaError(f"no audio stream: cannot compute {', '.join(audio_wanted)}")
        if video_wanted and streams.video is None:
            raise InvalidMediaError(f"no video stream: cannot compute {', '.join(video_wanted)}")

        hop = max(1, round(SAMPLE_RATE * params.window_ms / 1000))
        onset = OnsetEnvelope(SAMPLE_RATE) if {"beats", "onsets"} & set(audio_wanted) else None
        windows = WindowEnvelopes(SAMPLE_RATE, hop, params.bands if "spectrum" in audio_wanted else None)
        samples = 0

        def on_audio(block: npt.NDArray[np.float32]) -> None:
            nonlocal samples
            samples += block.size
            windows.push(block)
            if onset is not None:
                onset.push(block)

        measures = VideoMeasures() if {"scene_changes", "motion"} & set(video_wanted) else None
        if progress is not None:
            progress(0.0)
        stream_media(
            container,
            streams,
            on_audio=on_audio if audio_wanted else None,
            on_video=measures.push if measures is not None else None,
            progress=progress,
            limits=limits,
        )

    audio: dict[str, Any] | None = None
    duration = streams.duration
    if audio_wanted:
        if samples == 0:
            raise InvalidMediaError("the audio stream decoded to no samples")
        duration = samples / SAMPLE_RATE
        audio = _audio_results(audio_wanted, params, hop, windows, onset)

    video: dict[str, Any] | None = None
    if video_wanted and streams.video is not None:
        stream = streams.video
        rate = stream.average_rate or stream.guessed_rate or Fraction(0)
        frame_rate = float(rate)
        video_duration = streams.duration
        if not video_duration and stream.duration and stream.time_base:
            video_duration = float(stream.duration * stream.time_base)
        video = {}
        if "metadata" in video_wanted:
            video["metadata"] = {
                "duration": round(video_duration, 4),
                "frame_rate": round(frame_rate, 4),
                "width": stream.codec_context.width,
                "height": stream.codec_context.height,
                "codec": stream.codec_context.name,
                "has_audio": streams.audio is not None,
            }
        if measures is not None and "scene_changes" in video_wanted:
            video["scene_changes"] = measures.scene_changes(params.scene_threshold)
        if measures is not None and "motion" in video_wanted:
            video["motion"] = measures.motion_result(frame_rate)
        if not duration:
            duration = video_duration

    if progress is not None:
        progress(1.0)
    return {
        "version": ANALYZER_VERSION,
        "features": wanted,
        "duration": round(duration, 4),
        "audio": audio,
        "video": video,
    }


def onset_bands(path: Path, limits: InputLimits = InputLimits()) -> OnsetBands:
    """The onset envelopes of the audio at `path`, as the beats feature sees them (for tuning and tests)."""
    with open_media(str(path), limits) as container:
        streams = find_streams(container)
        if streams.audio is None:
            raise InvalidMediaError("no audio stream")
        onset = OnsetEnvelope(SAMPLE_RATE)
        stream_media(container, streams, on_audio=onset.push, on_video=None, limits=limits)
    return onset.finish()


def _audio_results(
    wanted: list[str], params: AnalysisParams, hop: int, windows: WindowEnvelopes, onset: OnsetEnvelope | None
) -> dict[str, Any]:
    rms, band_amps = windows.finish()
    times = (np.arange(rms.size) + 0.5) * hop / SAMPLE_RATE
    out: dict[str, Any] = {}
    if "energy" in wanted:
        peak = float(rms.max()) if rms.size else 0.0
        values = rms / peak if peak > 0 else np.zeros_like(rms)
        out["energy"] = {"times": _round(times), "values": _round(values), "window_ms": params.window_ms}
    if "spectrum" in wanted:
        loudest = float(band_amps.max()) if band_amps.size else 0.0
        bands: dict[str, list[float]] = {}
        for i, name in enumerate(params.bands):
            column = band_amps[:, i].astype(np.float64)
            scale = max(float(column.max()) if column.size else 0.0, loudest * _BAND_FLOOR)
            bands[name] = _round(column / scale if scale > 0 else np.zeros_like(column))
        out["spectrum"] = {
            "times": _round(times),
            "bands": bands,
            "band_ranges": {name: [lo, hi] for name, (lo, hi) in params.bands.items()},
        }
    if onset is None:
        return out
    envelopes = onset.finish()
    if "beats" in wanted:
        beats = track_beats(envelopes, params.tempo_min, params.tempo_max, params.tempo_hint)
        out["beats"] = beats.to_json()
    if "onsets" in wanted:
        out["onsets"] = _onsets(envelopes.full, envelopes.fps, times, hop)
    return out


def _onsets(strength: FloatArray, fps: float, window_times: FloatArray, hop: int) -> dict[str, Any]:
    """Peaks of the onset envelope over an adaptive threshold, and the envelope max-pooled per window."""
    peak = float(strength.max()) if strength.size else 0.0
    norm = strength / peak if peak > 0 else np.zeros_like(strength)
    picked = onset_peaks(norm, fps)
    # Max-pool the envelope onto the energy/spectrum windows.
    frame_window = np.minimum((np.arange(norm.size) * ONSET_HOP // hop), max(window_times.size - 1, 0))
    pooled = np.zeros(window_times.size)
    if norm.size and window_times.size:
        np.maximum.at(pooled, frame_window, norm)
    return {"times": _round(picked), "strength": {"times": _round(window_times), "values": _round(pooled)}}
