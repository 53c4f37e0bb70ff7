"""The original engine's spellings of a step, translated to the canonical form before validation.

Each spelling keeps the meaning it had in the original engine and comes out as the config the
canonical form writes, so both give the same steps, the same step ids and one shared cache.
Where the original meant something this engine cannot do, the error names the field and says
what to write instead. `CanonicalStep` remembers where each part was written, so that errors
found later still point at the user's own spelling.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from artdag_common.errors import InvalidInputError
from artdag_common.operations import AUDIO_FEATURES, VIDEO_FEATURES, EffectConfig

Path = tuple[str | int, ...]

# The original TRANSFORM's `effects:` keys, in the order it applied them; ours has the same ones.
ENGINE_TRANSFORM_EFFECTS = ("saturation", "contrast", "brightness", "gamma", "hue", "blur", "sharpen", "speed")

FEATURE_NAMES = {"motion_tempo": "motion"}
"""The original's analysis feature names → ours ("motion" carries the motion tempo)."""

_AUDIO = sorted(AUDIO_FEATURES - {"tempo"})  # "tempo" is another name for "beats"
ALL_FEATURES = {
    "audio": _AUDIO,
    "image": sorted(VIDEO_FEATURES),
    "video": sorted(set(_AUDIO) | VIDEO_FEATURES),
    "any": sorted(set(_AUDIO) | VIDEO_FEATURES),
}
"""ANALYZE `all`: every feature the input's declared type carries (the original analysed what it found)."""

SOURCE_LIST_KEYS = frozenset({"input", "name", "description", "type"})

PATH_REFUSED = (
    "a recipe cannot read files on the server: upload the file (`artdag upload FILE` or POST /cache/upload),"
    " or import it (POST /cache/import), and bind its CID to this input when you run the recipe;"
    " or name it (`artdag asset add NAME FILE`) and write `asset: NAME`"
)


class Fail(Protocol):
    """The parser's error factory: a message, the field path, and the step it belongs to."""

    def __call__(self, message: str, path: Path, step: str | None = None) -> InvalidInputError: ...


@dataclass(frozen=True)
class CanonicalStep:
    """A step in the canonical spelling, and where each part of it was written (paths relative to the step)."""

    type: Any
    inputs: Any
    config: Any
    input_paths: list[Path] = field(default_factory=list)
    config_paths: dict[Path, Path] = field(default_factory=dict)

    def input_path(self, index: int) -> Path:
        """Where the input at `index` of the canonical inputs was written."""
        return self.input_paths[index] if index < len(self.input_paths) else ("inputs", index)

    def config_path(self, loc: Path) -> Path:
        """Where the value at `loc` in the canonical config was written."""
        for n in range(len(loc), 0, -1):
            written = self.config_paths.get(loc[:n])
            if written is not None:
                return (*written, *loc[n:])
        return ("config", *loc)


def canonical_step(
    item: dict[str, Any], spath: Path, step_id: str, fail: Fail, kind_of: Callable[[str], str]
) -> CanonicalStep:
    """`item` (a step as written) in the canonical spelling; `kind_of` gives an input's declared type."""
    type_name = item.get("type")
    inputs, input_paths = _inputs(item.get("inputs", []), spath, step_id, fail)
    config = item.get("config") or {}
    kind = type_name.upper() if isinstance(type_name, str) else None
    if kind is None or not isinstance(config, dict) or not isinstance(inputs, list):
        return CanonicalStep(type_name, inputs, config, input_paths)
    where: Path = (*spath, "config")
    paths: dict[Path, Path] = {}
    if kind in ("SOURCE", "SOURCE_LIST"):
        for key in ("path", "paths"):
            if key in config:
                raise fail(PATH_REFUSED, (*where, key), step_id)
    if kind == "SOURCE_LIST":
        for key in config:
            if key not in SOURCE_LIST_KEYS:
                raise fail(
                    f"unknown field {key!r} (a SOURCE_LIST has {', '.join(sorted(SOURCE_LIST_KEYS))})",
                    (*where, key),
                    step_id,
                )
        bound = config.get("input", True)
        return CanonicalStep(
            "SOURCE",
            inputs,
            {"input": step_id if bound is True else bound},
            input_paths,
            {("input",): ("config", "input")},
        )
    if kind == "MUX":
        inputs, input_paths, config = _mux(inputs, input_paths, config, spath, step_id, fail)
    elif kind == "MAP":
        config, paths = _map(config, where, step_id, fail)
    elif kind == "ANALYZE":
        config, paths = _analyze(
            config, where, step_id, fail, kind_of(inputs[0]) if inputs and isinstance(inputs[0], str) else "any"
        )
    else:
        config, paths = translate_config(kind, config, where, step_id, fail)
    return CanonicalStep(
        type_name, inputs, config, input_paths, {loc: ("config", *written) for loc, written in paths.items()}
    )


def translate_config(
    kind: str, config: dict[str, Any], where: Path, step_id: str, fail: Fail
) -> tuple[dict[str, Any], dict[Path, Path]]:
    """A one-input node's config in the canonical spelling, and canonical key → written key (relative to config)."""
    if kind == "TRANSFORM":
        return _transform(config, where, step_id, fail)
    if kind == "EFFECT":
        return _effect(config, where, step_id, fail)
    return config, {}


def _inputs(raw: Any, spath: Path, step_id: str, fail: Fail) -> tuple[Any, list[Path]]:
    """Inputs as a list, with where each was written; a mapping's values are flattened in key order."""
    if isinstance(raw, str):
        return [raw], [("inputs",)]
    if isinstance(raw, list):
        return raw, [("inputs", j) for j in range(len(raw))]
    if not isinstance(raw, dict):
        return raw, []
    names: list[str] = []
    paths: list[Path] = []
    for key, value in raw.items():
        if isinstance(value, str):
            names.append(value)
            paths.append(("inputs", key))
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            names.extend(value)
            paths.extend(("inputs", key, k) for k in range(len(value)))
        else:
            raise fail("must be a step or input name, or a list of them", (*spath, "inputs", key), step_id)
    return names, paths


def _mux(
    inputs: list[Any], input_paths: list[Path], config: dict[str, Any], spath: Path, step_id: str, fail: Fail
) -> tuple[list[Any], list[Path], dict[str, Any]]:
    """`video_stream`/`audio_stream` pick the inputs that give the video and the sound: ours takes them in order."""
    streams = {"video_stream": 0, "audio_stream": 1}
    if not any(key in config for key in streams):
        return inputs, input_paths, config
    if len(inputs) < 2:
        raise fail(f"MUX takes 2 inputs (video, sound), got {len(inputs)}", (*spath, "inputs"), step_id)
    picked = []
    for key, default in streams.items():
        index = config.get(key, default)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(inputs):
            raise fail(
                f"{key} is the index of one of this step's inputs (0..{len(inputs) - 1}), got {index!r}",
                (*spath, "config", key),
                step_id,
            )
        picked.append(index)
    rest = {k: v for k, v in config.items() if k not in streams}
    return [inputs[i] for i in picked], [input_paths[i] for i in picked], rest


def _transform(
    config: dict[str, Any], where: Path, step_id: str, fail: Fail
) -> tuple[dict[str, Any], dict[Path, Path]]:
    """TRANSFORM `{effects: {saturation: 1.2, blur: 2, …}}` is our TRANSFORM with those settings."""
    if "effects" not in config:
        return config, {}
    for key in config:
        if key != "effects":
            raise fail(
                f"{key!r} beside effects: write every setting inside effects, or all of them without it",
                (*where, key),
                step_id,
            )
    effects = config["effects"] if config["effects"] is not None else {}
    if not isinstance(effects, dict):
        raise fail(f"must be a mapping of {', '.join(ENGINE_TRANSFORM_EFFECTS)}", (*where, "effects"), step_id)
    for key in effects:
        if key not in ENGINE_TRANSFORM_EFFECTS:
            raise fail(
                f"{key!r} is not a TRANSFORM effect (they are {', '.join(ENGINE_TRANSFORM_EFFECTS)}): write rotate,"
                " flip and crop without effects:, and a library effect as an EFFECT step {effect: NAME, params: {…}}",
                (*where, "effects", key),
                step_id,
            )
    return dict(effects), {(key,): ("effects", key) for key in effects}


_EFFECT_FIELDS = frozenset(EffectConfig.model_fields)


def _effect(config: dict[str, Any], where: Path, step_id: str, fail: Fail) -> tuple[dict[str, Any], dict[Path, Path]]:
    """EFFECT `{effect: blur, radius: 3}`: the original wrote parameters beside `effect`; ours has them in `params`."""
    for key in ("cid", "hash", "effect_path"):
        if key in config:
            raise fail(
                f"effects are not loaded by {key}: name one of the installed effects with effect: NAME"
                " (the README's Effects section lists them) and remove this field",
                (*where, key),
                step_id,
            )
    # A resize (`size`) is a mapping; a number there is an effect's own `size` parameter (film_grain's).
    flat = [k for k, v in config.items() if k not in _EFFECT_FIELDS or (k == "size" and not isinstance(v, dict))]
    if not flat:
        return config, {}
    params = config.get("params", {})
    if not isinstance(params, dict):
        return config, {}  # the config model reports it
    for key in flat:
        if key in params:
            raise fail(f"{key!r} is given twice: here and in params", (*where, key), step_id)
        value = config[key]
        if isinstance(value, dict) and value.get("_binding"):
            raise fail(
                "a parameter that follows analysis is written under bindings:"
                f" {{{key}: {{analysis: <ANALYZE step>, feature: energy, range: [lo, hi]}}}}",
                (*where, key),
                step_id,
            )
    out = {k: v for k, v in config.items() if k not in flat}
    out["params"] = {**params, **{key: config[key] for key in flat}}
    return out, {("params", key): (key,) for key in flat}


def _analyze(
    config: dict[str, Any], where: Path, step_id: str, fail: Fail, kind: str
) -> tuple[dict[str, Any], dict[Path, Path]]:
    """`feature: X` is `features: [X]`; `all` is every feature of the input's type; `motion_tempo` is `motion`."""
    paths: dict[Path, Path] = {}
    out = dict(config)
    if "feature" in config:
        if "features" in config:
            raise fail("give feature (one) or features (a list), not both", (*where, "feature"), step_id)
        written: Any = [out.pop("feature")]
        if not isinstance(written[0], str):
            raise fail("feature is one feature name; several are features: [a, b]", (*where, "feature"), step_id)
        paths[("features",)] = ("feature",)
    elif isinstance(config.get("features"), str):
        written = [config["features"]]
    else:
        written = config.get("features")
    if not isinstance(written, list) or not all(isinstance(f, str) for f in written):
        return out, paths  # the config model reports it
    features: list[str] = []
    name: str
    for name in written:
        features.extend(
            ALL_FEATURES.get(kind, ALL_FEATURES["any"]) if name == "all" else [FEATURE_NAMES.get(name, name)]
        )
    out["features"] = list(dict.fromkeys(features))
    return out, paths


def _map(config: dict[str, Any], where: Path, step_id: str, fail: Fail) -> tuple[dict[str, Any], dict[Path, Path]]:
    """MAP's per-item config is spelled as the mapped node's own."""
    operation, inner = config.get("operation"), config.get("config")
    if not isinstance(operation, str) or not isinstance(inner, dict):
        return config, {}
    translated, paths = translate_config(operation.upper(), inner, (*where, "config"), step_id, fail)
    return {**config, "config": translated}, {("config", *loc): ("config", *written) for loc, written in paths.items()}
