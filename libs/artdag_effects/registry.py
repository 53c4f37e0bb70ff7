"""Find installed effects through the `artdag.effects` entry-point group, and resolve aliases.

Only effects installed as packages exist: each entry point loads to an
`EffectSpec` whose name matches the entry point's. Uploaded code is never run.
`ALIASES` accepts the original engine's effect names and parameters as another
effect's (e.g. `pixelsort` → `pixel_sort`), resolved before a step is hashed.
"""

from __future__ import annotations

import difflib
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Literal

from pydantic import Field, ValidationError

from artdag_common.errors import InvalidInputError, invalid_input
from artdag_effects.builtin.color_adjust import ColorAdjustParams
from artdag_effects.builtin.edge_detect import EdgeDetectParams
from artdag_effects.spec import EffectParams, EffectSpec

ENTRY_POINT_GROUP = "artdag.effects"


class UnknownEffectError(KeyError):
    """No installed effect has this name; the message lists close names."""

    def __init__(self, name: str, known: list[str], *, user: bool = False) -> None:
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        self.name = name
        if user:
            self.message = f"effect {name}: no effect source with that CID is stored (upload it first)"
        else:
            self.message = f"unknown effect {name!r}{hint} (installed: {', '.join(known) or 'none'})"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


@functools.cache
def available_effects() -> dict[str, EffectSpec]:
    """Every installed effect by name, loaded once per process and sorted by name.

    A broken entry point (one that does not load to an `EffectSpec` of the same
    name) raises `TypeError`: a bad install should fail loudly, not lose an effect.
    """
    found: dict[str, EffectSpec] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        spec = ep.load()
        if not isinstance(spec, EffectSpec):
            raise TypeError(f"entry point {ep.name!r} ({ep.value}) is not an EffectSpec")
        if spec.name != ep.name:
            raise TypeError(f"entry point {ep.name!r} ({ep.value}) loads effect {spec.name!r}")
        found[ep.name] = spec
    return dict(sorted(found.items()))


def get_effect(name: str) -> EffectSpec:
    """The installed effect called `name`, or the user effect whose source has that CID (once this
    process registered it: see `artdag_effects.user`); `UnknownEffectError` if there is none."""
    effects = available_effects()
    try:
        return effects[name]
    except KeyError:
        pass
    from artdag_effects.user import is_user_effect_name, user_effect

    if (found := user_effect(name)) is not None:
        return found
    if is_user_effect_name(name):
        raise UnknownEffectError(name, [], user=True)
    raise UnknownEffectError(name, list(effects))


# --- the original engine's names ----------------------------------------------------------------


@dataclass(frozen=True)
class ParamMap:
    """How one original parameter becomes a parameter of the canonical effect.

    A number becomes value·scale / per + shift (an affine map, so a binding's range maps
    the same way and bound values match static ones); a choice is looked up in `values`.
    """

    target: str
    scale: float = 1.0
    per: float = 1.0
    shift: float = 0.0
    values: Mapping[Any, Any] | None = None

    def convert(self, value: Any) -> Any:
        """The canonical value for an original (already validated) value."""
        if self.values is not None:
            return self.values[value]
        if isinstance(value, bool) or not isinstance(value, int | float):
            return value
        if (self.scale, self.per, self.shift) == (1.0, 1.0, 0.0):
            return value
        return value * self.scale / self.per + self.shift


@dataclass(frozen=True)
class EffectAlias:
    """An original effect name accepted with its original parameters, as another effect.

    `params_model` validates the original parameters (so errors name them); `params`
    maps each to a parameter of `effect`; `fixed` sets canonical parameters the
    original had no say in.
    """

    name: str
    effect: str
    params_model: type[EffectParams]
    params: Mapping[str, ParamMap]
    fixed: Mapping[str, Any] = field(default_factory=dict)

    def numeric_params(self) -> frozenset[str]:
        """The original parameters a binding may drive: the int and float ones."""
        return frozenset(
            name for name, info in self.params_model.model_fields.items() if info.annotation in (int, float)
        )


class _BrightnessParams(EffectParams):
    amount: float = Field(25.0, ge=-255, le=255, description="added to every channel value; 0 = none")


class _ContrastParams(EffectParams):
    amount: float = Field(1.2, ge=0, le=4, description="gain around mid-grey; 1 = unchanged")


class _PixelsortParams(EffectParams):
    lower_threshold: float = Field(0.25, ge=0, le=1, description="lowest key (0..1) that is sorted")
    upper_threshold: float = Field(0.8, ge=0, le=1, description="highest key (0..1) that is sorted")
    sort_by: Literal["lightness", "hue", "saturation"] = Field("lightness", description="what pixels are sorted by")
    angle: Literal[0, 90] = Field(0, description="0 = sort along rows, 90 = along columns")
    reverse: bool = Field(False, description="sort from high key to low")


class _RippleParams(EffectParams):
    amplitude: float = Field(0.02, ge=0, le=0.25, description="displacement, as a fraction of the width")
    wavelength: float = Field(0.2, ge=0.01, le=4, description="ring spacing, as a fraction of the height")
    speed: float = Field(1.0, ge=-20, le=20, description="ring cycles per second")


class _NoiseParams(EffectParams):
    amount: float = Field(15.0, ge=0, le=100, description="noise strength on ffmpeg's 0..100 `alls` scale")


class _FlipParams(EffectParams):
    direction: Literal["horizontal", "vertical", "both"] = Field("horizontal", description="which way to flip")


def _same(*names: str) -> dict[str, ParamMap]:
    return {name: ParamMap(name) for name in names}


ALIASES: Mapping[str, EffectAlias] = {
    alias.name: alias
    for alias in (
        EffectAlias(
            "brightness",
            "brightness_contrast",
            _BrightnessParams,
            {"amount": ParamMap("brightness", per=255)},
            {"contrast": 1.0},
        ),
        EffectAlias(
            "contrast", "brightness_contrast", _ContrastParams, {"amount": ParamMap("contrast")}, {"brightness": 0.0}
        ),
        EffectAlias(
            "pixelsort",
            "pixel_sort",
            _PixelsortParams,
            {
                "lower_threshold": ParamMap("low", scale=255),
                "upper_threshold": ParamMap("high", scale=255),
                "sort_by": ParamMap("key", values={"lightness": "luma", "hue": "hue", "saturation": "saturation"}),
                "angle": ParamMap("direction", values={0: "horizontal", 90: "vertical"}),
                "reverse": ParamMap("reverse"),
            },
        ),
        EffectAlias("ripple", "wave", _RippleParams, _same("amplitude", "wavelength", "speed"), {"mode": "ripple"}),
        EffectAlias("outline", "edge_detect", EdgeDetectParams, _same("strength", "intensity", "color", "invert")),
        EffectAlias(
            "noise",
            "film_grain",
            _NoiseParams,
            {"amount": ParamMap("amount", per=100)},
            {"size": 1, "monochrome": False},
        ),
        EffectAlias("flip", "mirror", _FlipParams, {"direction": ParamMap("axis")}, {"mode": "flip"}),
        EffectAlias(
            "color-adjust", "color_adjust", ColorAdjustParams, _same("brightness", "contrast", "saturation", "gamma")
        ),
    )
}
"""The original engine's effect names that are spelt differently here, by original name."""


@functools.cache
def available_aliases() -> dict[str, EffectAlias]:
    """`ALIASES`, checked once against the installed effects: no alias hides an effect or lacks one."""
    effects = available_effects()
    for name, alias in ALIASES.items():
        if name in effects:
            raise TypeError(f"alias {name!r} hides the installed effect of the same name")
        if alias.effect not in effects:
            raise TypeError(f"alias {name!r} stands for {alias.effect!r}, which is not installed")
    return dict(ALIASES)


@functools.cache
def builtin_names() -> frozenset[str]:
    """Every name a recipe's `effect:` means a built-in by (installed effects and the original's aliases):
    a name users give their own effects may be none of these."""
    return frozenset(available_effects()) | frozenset(available_aliases())


def refuse_builtin_name(name: str) -> None:
    """`InvalidInputError` (field `name`) when `name` means a built-in effect: an effect of a user's
    named so could never be reached, since a recipe's `effect: NAME` always means the built-in."""
    if name in builtin_names():
        raise InvalidInputError(
            f"{name!r} is a built-in effect's name (a recipe's `effect: {name}` always means the built-in):"
            " give your effect another name (`name` in the request, `--name` on the command line)",
            field="name",
        )


def _round_half_up(value: float) -> int:
    # The same rounding as a bound int parameter gets, so static and bound values agree.
    return math.floor(value + 0.5)


def _params_error(alias: EffectAlias, error: ValidationError) -> InvalidInputError:
    invalid = invalid_input(error, prefix="params", unknown="unknown parameter")
    known = ", ".join(alias.params_model.model_fields)
    return InvalidInputError(f"{invalid.message} ({alias.name} takes {known})", field=invalid.field)


def _translate_binding(raw: Any, mapping: ParamMap) -> Any:
    # A binding is mapped by its range alone (the 0..1 signal is unit-free); the canonical
    # validation checks everything else, so a malformed range is left for it to report.
    if not isinstance(raw, Mapping) or (mapping.scale, mapping.per, mapping.shift) == (1.0, 1.0, 0.0):
        return raw
    bounds = raw.get("range", (0.0, 1.0))
    if not (
        isinstance(bounds, list | tuple)
        and len(bounds) == 2
        and all(isinstance(b, int | float) and not isinstance(b, bool) for b in bounds)
    ):
        return raw
    return {**raw, "range": [float(mapping.convert(float(b))) for b in bounds]}


def resolve_alias(effect: str, params: Any, bindings: Any) -> tuple[str, Any, Any]:
    """The canonical effect, params and bindings for a step that may name an original effect.

    A name that is not an alias comes back unchanged. For an alias, the original params
    are validated (an error names the original parameter, e.g. "params.amount") and
    translated; bindings move to the canonical parameter with their range translated.
    Planners resolve aliases before hashing a step, so both spellings share step ids.
    """
    alias = available_aliases().get(effect)
    if alias is None or not isinstance(params, Mapping) or not isinstance(bindings, Mapping):
        return effect, params, bindings
    fields = alias.params_model.model_fields
    numeric = alias.numeric_params()
    for name in bindings:
        if name not in fields:
            known = ", ".join(sorted(numeric)) or "none"
            raise InvalidInputError(f"{effect} has no parameter {name!r} (bindable: {known})", field=f"bindings.{name}")
        if name not in numeric:
            raise InvalidInputError(f"{name!r} is not numeric and cannot be bound", field=f"bindings.{name}")
    try:
        original = alias.params_model.model_validate(dict(params))
    except ValidationError as exc:
        raise _params_error(alias, exc) from None
    target_fields = get_effect(alias.effect).params_model.model_fields
    canonical: dict[str, Any] = dict(alias.fixed)
    for name, mapping in alias.params.items():
        value = mapping.convert(getattr(original, name))
        if target_fields[mapping.target].annotation is int and isinstance(value, float):
            value = _round_half_up(value)
        canonical[mapping.target] = value
    moved = {alias.params[name].target: _translate_binding(raw, alias.params[name]) for name, raw in bindings.items()}
    return alias.effect, canonical, moved


def resolve_effect_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """An EFFECT step's config (effect, params, bindings, …) with any original effect name resolved."""
    effect = config.get("effect")
    if not isinstance(effect, str):
        return dict(config)
    name, params, bindings = resolve_alias(effect, config.get("params", {}), config.get("bindings", {}))
    if name == effect:
        return dict(config)
    return {**config, "effect": name, "params": params, "bindings": bindings}
