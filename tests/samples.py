"""Sample steps covering every primitive, and the tiny inputs they run on.

Used by the primitive tests and by the cross-process determinism test: each
entry is (label, node_type, config, input_kinds); `make_input` synthesizes an
input of a kind deterministically ("video": H.264/AAC with sound, "silent":
video without audio, "audio": a WAV click track).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from artdag_cli.demo_media import write_click_track, write_test_clip

_SIZES = ((160, 120), (128, 96), (192, 108), (96, 96))

SAMPLE_STEPS: list[tuple[str, str, dict[str, Any], list[str]]] = [
    ("noop", "NOOP", {"n": 3}, []),
    ("thumbnail", "THUMBNAIL", {"width": 64, "at_s": 0.5}, ["video"]),
    ("resize-fit", "RESIZE", {"width": 96, "height": 96, "mode": "fit", "background": "#204060"}, ["video"]),
    ("resize-fill", "RESIZE", {"width": 96, "height": 64, "mode": "fill"}, ["video"]),
    ("segment-precise", "SEGMENT", {"start": 0.4, "end": 1.2}, ["video"]),
    ("segment-offset", "SEGMENT", {"offset": 0.2, "duration": 0.6}, ["silent"]),
    ("segment-copy", "SEGMENT", {"start": 0.4, "end": 1.2, "precise": False}, ["video"]),
    ("transform-neutral", "TRANSFORM", {}, ["video"]),
    (
        "transform-colour",
        "TRANSFORM",
        {"saturation": 1.5, "contrast": 1.2, "brightness": 0.1, "gamma": 1.1, "hue": 30, "blur": 2, "sharpen": 1.0},
        ["video"],
    ),
    (
        "transform-geometry",
        "TRANSFORM",
        {"rotate": 90, "flip": "h", "crop": {"x": 8, "y": 8, "width": 64, "height": 48}},
        ["video"],
    ),
    ("transform-speed-up", "TRANSFORM", {"speed": 2.0}, ["video"]),
    ("transform-slow-down", "TRANSFORM", {"speed": 0.5, "rotate": 180, "flip": "v"}, ["video"]),
    ("sequence-cut", "SEQUENCE", {}, ["video", "silent"]),
    (
        "sequence-crossfade",
        "SEQUENCE",
        {"transition": {"type": "crossfade", "duration": 0.4}},
        ["video", "video", "silent"],
    ),
    (
        "sequence-fade",
        "SEQUENCE",
        {"transition": {"type": "fade", "duration": 0.3}, "target_size": "largest"},
        ["video", "silent"],
    ),
    (
        "sequence-explicit",
        "SEQUENCE",
        {"target_size": "explicit", "width": 96, "height": 64, "background": "white"},
        ["silent", "video"],
    ),
    ("layer", "LAYER", {"inputs": [{"position": [10, 20], "opacity": 0.5, "scale": 0.5}]}, ["video", "silent"]),
    (
        "layer-two",
        "LAYER",
        {"inputs": [{"position": [-8, 0]}, {"position": [60, 40], "scale": 0.25, "opacity": 0.8}]},
        ["video", "video", "silent"],
    ),
    *[
        (f"blend-{mode}", "BLEND", {"mode": mode, "opacity": 0.8 if mode == "overlay" else 1.0}, ["video", "silent"])
        for mode in ("multiply", "screen", "overlay", "add", "subtract", "average", "difference", "lighten", "darken")
    ],
    ("mux-shortest", "MUX", {"shortest": True}, ["silent", "audio"]),
    ("mux-longest", "MUX", {"shortest": False}, ["video", "audio"]),
    ("audio-mix", "AUDIO_MIX", {"gains": [1.0, 0.5], "normalize": True}, ["video", "audio"]),
    ("audio-mix-three", "AUDIO_MIX", {"normalize": False}, ["audio", "video", "audio"]),
    (
        "chain-cut-retime-grade",
        "CHAIN",
        {
            "stages": [
                {"type": "SEGMENT", "config": {"start": 0.2, "end": 1.4}},
                {"type": "TRANSFORM", "config": {"speed": 1.5, "saturation": 1.3}},
                {"type": "RESIZE", "config": {"width": 96, "height": 64, "mode": "fill"}},
            ]
        },
        ["video"],
    ),
    (
        "chain-colour-table",
        "CHAIN",
        {
            "stages": [
                {"type": "EFFECT", "config": {"effect": "brightness_contrast", "params": {"contrast": 1.3}}},
                {"type": "EFFECT", "config": {"effect": "hue_shift", "params": {"degrees": 40}}},
            ]
        },
        ["video"],
    ),
    (
        "cuts-back-and-forth",
        "CUTS",
        {
            "pieces": [
                {"stages": [{"type": "SEGMENT", "config": {"start": 0.8, "end": 1.2}}]},
                {
                    "stages": [
                        {"type": "SEGMENT", "config": {"start": 0.1, "end": 0.5}},
                        {"type": "TRANSFORM", "config": {"speed": 0.5}},
                    ]
                },
                {
                    "stages": [
                        {"type": "SEGMENT", "config": {"start": 0.5, "end": 1.5}},
                        {"type": "TRANSFORM", "config": {"speed": 2.0}},
                    ]
                },
            ]
        },
        ["video"],
    ),
]
"""(label, node_type, config, input kinds) for every primitive, mode and transition."""

EFFECT_SAMPLE: tuple[str, str, dict[str, Any], list[str]] = ("effect", "EFFECT", {"effect": "invert"}, ["video"])
"""An EFFECT step, for when `artdag_effects` is installed (it is optional for these samples)."""


def make_input(kind: str, directory: Path, index: int) -> Path:
    """Write input number `index` of `kind` into `directory` (same bytes every time) and return its path."""
    width, height = _SIZES[index % len(_SIZES)]
    if kind == "video":
        path = directory / f"video-{index}.mp4"
        write_test_clip(path, width=width, height=height, fps=25, duration_s=1.6, tone_hz=330.0 + 110.0 * index)
    elif kind == "silent":
        path = directory / f"silent-{index}.mp4"
        write_test_clip(path, width=width, height=height, fps=25, duration_s=1.2, with_audio=False)
    elif kind == "audio":
        path = directory / f"audio-{index}.wav"
        write_click_track(path, bpm=100.0 + 20.0 * index, duration_s=1.0 + 0.25 * index)
    else:
        raise ValueError(f"unknown input kind {kind!r}")
    return path
