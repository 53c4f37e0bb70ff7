"""The registry: entry points, lookup by name, and what every installed effect declares."""

from __future__ import annotations

import importlib

import pytest
from pydantic import BaseModel

from artdag_effects import EffectSpec, UnknownEffectError, available_effects, get_effect

EFFECTS = sorted(available_effects())


def test_at_least_32_effects_are_installed_as_entry_points() -> None:
    assert len(EFFECTS) >= 32
    for name in ("invert", "grayscale", "datamosh", "ascii_art", "pixel_sort", "echo", "trails", "tile_grid"):
        assert name in EFFECTS


def test_available_effects_is_cached() -> None:
    assert available_effects() is available_effects()


def test_unknown_effect_raises_a_key_error_naming_close_matches() -> None:
    with pytest.raises(UnknownEffectError) as info:
        get_effect("invrt")
    assert isinstance(info.value, KeyError)
    assert "'invrt'" in str(info.value)
    assert "'invert'" in str(info.value)
    assert info.value.name == "invrt"


@pytest.mark.parametrize("name", EFFECTS)
def test_every_effect_declares_itself_fully(name: str) -> None:
    spec = get_effect(name)
    assert isinstance(spec, EffectSpec)
    assert spec.name == name
    assert spec.version and spec.description and "\n" not in spec.description
    assert issubclass(spec.params_model, BaseModel)
    assert spec.params_model.model_config.get("extra") == "forbid"
    defaults = spec.params_model()  # every built-in parameter has a default
    assert spec.params_model.model_validate(defaults.model_dump(mode="json")) == defaults
    assert spec.numeric_params() <= set(spec.params_model.model_fields)
    module = importlib.import_module(f"artdag_effects.builtin.{name}")
    assert module.__doc__
    assert spec.version == module.VERSION
    assert module.EFFECT is spec


def test_numeric_params_are_the_int_and_float_fields() -> None:
    assert get_effect("threshold").numeric_params() == {"level"}  # `invert` is a bool
    assert get_effect("rotate").numeric_params() == {"degrees", "spin"}  # `background` is a colour
    assert get_effect("mirror").numeric_params() == frozenset()


def test_temporal_effects_say_so() -> None:
    temporal = {name for name in EFFECTS if get_effect(name).temporal}
    assert {"datamosh", "strobe", "echo", "trails"} <= temporal
    assert "invert" not in temporal
