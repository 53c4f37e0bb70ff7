"""The table from node type to the synchronous media function that renders it.

Runs inside a worker process: arguments and errors must pickle. Configs arrive
as plain dicts (already validated by the caller) and are validated again here
against `artdag_common.operations`, the single source of truth for their keys.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from artdag_common.errors import InvalidInputError, InvalidMediaError, PermanentError, invalid_input
from artdag_common.operations import (
    AudioMixConfig,
    BlendConfig,
    ChainConfig,
    CutsConfig,
    EffectConfig,
    LayerConfig,
    MuxConfig,
    NodeConfig,
    NoopConfig,
    ResizeConfig,
    SegmentConfig,
    SequenceConfig,
    ThumbnailConfig,
    TransformConfig,
    get_operation,
)
from artdag_effects.sandbox import PythonEffectPolicy, sandbox_scope
from artdag_effects.user import register_user_effect
from services.executor.encoding import PROFILES, rendering_with
from services.executor.join import render_join
from services.executor.primitives.chain import render_chain
from services.executor.primitives.composite import render_blend, render_layer
from services.executor.primitives.cuts import render_cuts
from services.executor.primitives.effect import render_effect
from services.executor.primitives.mux import render_audio_mix, render_mux
from services.executor.primitives.resize import render_resize
from services.executor.primitives.segment import render_segment
from services.executor.primitives.sequence import render_sequence
from services.executor.primitives.thumbnail import render_thumbnail
from services.executor.primitives.transform import render_transform

OUTPUT_SUFFIX = ".mp4"
"""Suffix of rendered files with video (the muxer is chosen explicitly, not from it)."""

AUDIO_OUTPUT_SUFFIX = ".m4a"
"""Suffix of audio-only rendered files (AUDIO_MIX)."""

Renderer = Callable[[Any, list[Path], Path, int], None]
"""(validated config model, input paths, output path, seed) → None."""

C = TypeVar("C", bound=NodeConfig)


def _typed(model: type[C], config: NodeConfig) -> C:
    if not isinstance(config, model):  # pragma: no cover - the table pairs them
        raise PermanentError(f"expected a {model.__name__}, got {type(config).__name__}")
    return config


def _resize(config: NodeConfig, inputs: list[Path], output: Path, seed: int) -> None:
    cfg = _typed(ResizeConfig, config)
    render_resize(inputs[0], output, width=cfg.width, height=cfg.height, mode=cfg.mode, background=cfg.background)


def _segment(config: NodeConfig, inputs: list[Path], output: Path, seed: int) -> None:
    cfg = _typed(SegmentConfig, config)
    start, end = cfg.window()
    render_segment(inputs[0], output, start=start, end=end, precise=cfg.precise)


def _effect(config: NodeConfig, inputs: list[Path], output: Path, seed: int) -> None:
    cfg = _typed(EffectConfig, config)
    render_effect(
        inputs[0],
        output,
        effect=cfg.effect,
        params=cfg.params,
        bindings=cfg.bindings,
        seed=seed,
        frames=cfg.frames,
        size=cfg.size,
    )


def _noop_bytes(config: NodeConfig, seed: int) -> bytes:
    return f"noop {_typed(NoopConfig, config).n} {seed:016x}\n".encode()


InlineRenderer = Callable[[Any, int], bytes]
"""(validated config model, seed) → the output's bytes."""

INLINE_RENDERERS: dict[str, InlineRenderer] = {"NOOP": _noop_bytes}
"""Node types that are no media work (tiny, instant, inputs unread): made in memory, on the event loop."""


def _write(output: Path, data: bytes) -> None:
    output.write_bytes(data)


def render_inline(node_type: str, config: NodeConfig, seed: int) -> bytes:
    """The output of an inline node type (see `INLINE_RENDERERS`) for a validated config."""
    return INLINE_RENDERERS[node_type](config, seed)


RENDERERS: dict[str, Renderer] = {
    "RESIZE": _resize,
    "SEGMENT": _segment,
    "TRANSFORM": lambda c, i, o, s: render_transform(i[0], o, _typed(TransformConfig, c)),
    "SEQUENCE": lambda c, i, o, s: render_sequence(i, o, _typed(SequenceConfig, c)),
    "LAYER": lambda c, i, o, s: render_layer(i, o, _typed(LayerConfig, c)),
    "BLEND": lambda c, i, o, s: render_blend(i, o, _typed(BlendConfig, c)),
    "MUX": lambda c, i, o, s: render_mux(i, o, _typed(MuxConfig, c)),
    "AUDIO_MIX": lambda c, i, o, s: render_audio_mix(i, o, _typed(AudioMixConfig, c)),
    "EFFECT": _effect,
    "JOIN": lambda c, i, o, s: render_join(i[:-1], i[-1], o),
    "CHAIN": lambda c, i, o, s: render_chain(i[0], o, _typed(ChainConfig, c), seed=s),
    "CUTS": lambda c, i, o, s: render_cuts(i[0], o, _typed(CutsConfig, c), seed=s),
    "NOOP": lambda c, i, o, s: _write(o, _noop_bytes(c, s)),
    "THUMBNAIL": lambda c, i, o, s: render_thumbnail(
        i[0], o, width=_typed(ThumbnailConfig, c).width, at_s=_typed(ThumbnailConfig, c).at_s
    ),
}
"""Every node type the executor renders (SOURCE is bound by the planner, not rendered)."""


def output_suffix(node_type: str) -> str:
    """The file suffix of what `node_type` renders."""
    return {"AUDIO_MIX": AUDIO_OUTPUT_SUFFIX, "THUMBNAIL": ".png", "NOOP": ".txt"}.get(node_type, OUTPUT_SUFFIX)


def run_operation(
    node_type: str,
    config: dict[str, Any],
    input_paths: list[str],
    output_path: str,
    input_labels: list[str],
    *,
    seed: int = 0,
    handoff: str = "deliver",
    user_effects: dict[str, bytes] | None = None,
    python_effects: PythonEffectPolicy | None = None,
) -> None:
    """Render one step into `output_path`; media errors name the input they came from.

    `seed` (the caller passes ``int(step_id[:16], 16)``) drives randomness in
    effects; other operations ignore it. Raises `InvalidInputError` naming the
    config field, `InvalidMediaError` prefixed with the input label, or
    `PermanentError` for a node type this executor cannot render. `handoff` picks the
    encoder profile every writer of this render uses (see `services.executor.encoding`).
    `python_effects` is the policy Python effects run under (None: they are off); the sandboxes
    of those this step starts are ended with it, however it ends.
    """
    for cid, source in (user_effects or {}).items():
        # This worker process compiles what the service verified.
        register_user_effect(cid, source, python=python_effects)
    renderer = RENDERERS.get(node_type)
    op = get_operation(node_type)
    if renderer is None or op is None:
        raise PermanentError(f"this executor cannot render {node_type} steps")
    if not op.min_inputs <= len(input_paths) <= op.max_inputs:
        raise PermanentError(f"{node_type} takes {op.min_inputs}..{op.max_inputs} inputs, got {len(input_paths)}")
    try:
        parsed = op.parse_config(config)
    except ValidationError as exc:
        raise invalid_input(exc) from None
    paths = [Path(p) for p in input_paths]
    profile = PROFILES.get(handoff)
    if profile is None:
        raise InvalidInputError(f"unknown hand-off {handoff!r}", field="handoff")
    try:
        with rendering_with(profile), sandbox_scope():
            renderer(parsed, paths, Path(output_path), seed)
    except InvalidMediaError as exc:
        raise InvalidMediaError(_label_media_error(exc.message, paths, input_labels)) from None


def _label_media_error(message: str, paths: list[Path], labels: list[str]) -> str:
    """Name the input a media error is about: by its label where the message names its file."""
    for path, label in zip(paths, labels, strict=False):
        prefix = f"{path.name}: "
        if message.startswith(prefix):
            return f"input {label}: {message.removeprefix(prefix)}"
    label = labels[0] if len(labels) == 1 else ", ".join(labels)
    return f"input {label}: {message}"
