"""Feature extraction for the analyzer: beats and tempo, energy, spectrum bands, onsets, scene changes, motion.

Plain synchronous code (the service runs it off the event loop). One streaming pass
decodes the file with PyAV; audio is resampled to mono 22.05 kHz and reduced to
per-frame envelopes as it arrives, video to small frames, so memory does not grow
with the length of the input beyond a few floats per frame.

`analyze_file` returns::

    {"version": ANALYZER_VERSION, "features": [sorted names, "tempo" resolved to "beats"],
     "duration": seconds,
     "audio": {"beats": {"tempo" (the tempo curve's median), "beat_times", "confidence",
                         "downbeat_times", "meter", "tempo_curve": {"times", "bpm"},
                         "tempo_candidates": [{"bpm", "confidence"}, … up to 3, best first]},
               "energy": {"times", "values", "window_ms"},
               "spectrum": {"times", "bands": {name: values}, "band_ranges"},
               "onsets": {"times", "strength": {"times", "values"}}} | None,
     "video": {"metadata": {"duration", "frame_rate", "width", "height", "codec", "has_audio"},
               "scene_changes": {"times", "threshold"},
               "motion": {"times", "values", "tempo"}} | None}

Only requested features appear. All values lists are normalised to 0..1.
"""

# The feature names are declared once in artdag_common: recipes are validated against the same names.
from artdag_common.operations import AUDIO_FEATURES, VIDEO_FEATURES
from services.analyzer.features.analyze import ANALYZER_VERSION, analyze_file, resolve_features
from services.analyzer.features.params import AnalysisParams

__all__ = [
    "ANALYZER_VERSION",
    "AUDIO_FEATURES",
    "VIDEO_FEATURES",
    "AnalysisParams",
    "analyze_file",
    "resolve_features",
]
