"""Find installed effects through the `artdag.effects` entry-point group.

Only effects installed as packages exist: each entry point loads to an
`EffectSpec` whose name matches the entry point's. Uploaded code is never run.
"""

from __future__ import annotations

import difflib
import functools
from importlib.metadata import entry_points

from artdag_effects.spec import EffectSpec

ENTRY_POINT_GROUP = "artdag.effects"


class UnknownEffectError(KeyError):
    """No installed effect has this name; the message lists close names."""

    def __init__(self, name: str, known: list[str]) -> None:
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        self.name = name
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
    """The installed effect called `name`; `UnknownEffectError` if there is none."""
    effects = available_effects()
    try:
        return effects[name]
    except KeyError:
        raise UnknownEffectError(name, list(effects)) from None
