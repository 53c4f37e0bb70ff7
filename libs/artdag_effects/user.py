"""User effects by CID: their compiled form, per process, once their source is verified against its CID.

A recipe names a user effect by the CID of its source (`EFFECT {effect: Qm…}`), so a step's id
includes the effect's exact text. A service that validates or renders such a step first reads
the source from the content store and calls `register_user_effect`; `get_effect` then finds it
like a built-in. The source is checked against the CID it is registered under: bytes that do
not hash to it are refused, whatever the store returned.

A source whose first line is `# artdag: python-effect` (or a PEP 723 `# /// script` line) is a
Python effect (`artdag_effects.sandbox`): accepted only where an admin turned them on (the caller
passes the `PythonEffectPolicy`; without one it is refused), and run in a sandbox, never here.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from artdag_common.cid import cid_of_bytes, validate_cid
from artdag_common.errors import InvalidCidError, InvalidInputError
from artdag_effects.lang import compile_effect
from artdag_effects.spec import EffectSpec

if TYPE_CHECKING:
    from artdag_effects.lang import UserEffect
    from artdag_effects.sandbox import PythonEffect, PythonEffectPolicy

MAX_SOURCE_BYTES = 64 * 1024
MAX_LOADED = 256


class _Loaded(NamedTuple):
    spec: EffectSpec
    source: bytes
    python: PythonEffectPolicy | None  # what a Python effect was registered under (None: not one)


_loaded: OrderedDict[str, _Loaded] = OrderedDict()
_lock = threading.Lock()


def is_user_effect_name(name: str) -> bool:
    """Whether an effect name is a CID (a user effect's source) rather than a built-in's name."""
    if not name.startswith(("Qm", "bafy", "bafk")):
        return False
    try:
        validate_cid(name)
    except InvalidCidError:
        return False
    return True


def is_python_source(text: str) -> bool:
    """Whether an effect's source is a Python effect (rather than the effect language)."""
    from artdag_effects.sandbox import is_python_effect

    return is_python_effect(text)


def check_source(text: str, *, python: PythonEffectPolicy | None = None) -> UserEffect | PythonEffect:
    """Check an effect's source without running any of it (what an upload calls).

    The effect language is compiled; a Python effect's header is read (`ast`), refused when
    `python` is None (Python effects off) or a dependency is not approved. Both results have
    `name`, `description`, `params` (`name`, `kind`, `default`, `low`, `high`, `description`)
    and `source`. Errors are `InvalidInputError`s naming `source`, with line and column.
    """
    if is_python_source(text):
        from artdag_effects.sandbox import check_python_effect

        return check_python_effect(text, python)
    from artdag_effects.lang import check_effect

    return check_effect(text)


def register_user_effect(cid: str, source: bytes, *, python: PythonEffectPolicy | None = None) -> EffectSpec:
    """Compile the effect whose source is `source` under `cid`; refused if the bytes are not that CID's.

    A Python effect needs `python`, the policy an admin enabled them with (None: refused, field
    `effect`); its spec runs each step in its own sandbox under that policy.
    """
    with _lock:
        if (found := _loaded.get(cid)) is not None and (found.python is None or found.python == python):
            _loaded.move_to_end(cid)
            return found.spec
    if len(source) > MAX_SOURCE_BYTES:
        raise InvalidInputError(f"effect {cid}: its source is over {MAX_SOURCE_BYTES:,} bytes", field="effect")
    version = 0 if cid.startswith("Qm") else 1
    if cid_of_bytes(source, version) != cid:
        raise InvalidInputError(f"effect {cid}: the bytes read do not hash to that CID", field="effect")
    try:
        text = source.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError(f"effect {cid} is not UTF-8 text", field="effect") from None
    python_effect = is_python_source(text)
    try:
        if python_effect:
            from artdag_effects.sandbox import OFF_MESSAGE, check_python_effect

            if python is None:
                raise InvalidInputError(OFF_MESSAGE)
            spec = check_python_effect(text, python).spec(cid, python)
        else:
            spec = compile_effect(text).spec(cid)
    except InvalidInputError as exc:
        raise InvalidInputError(f"effect {cid}: {exc.message}", field="effect") from None
    with _lock:
        _loaded[cid] = _Loaded(spec, source, python if python_effect else None)
        while len(_loaded) > MAX_LOADED:
            _loaded.popitem(last=False)
    return spec


def user_effect(cid: str) -> EffectSpec | None:
    """The registered user effect under `cid`, if this process has it."""
    with _lock:
        found = _loaded.get(cid)
    return None if found is None else found.spec


def user_source(cid: str) -> bytes | None:
    """The verified source of the registered user effect under `cid` (for a worker process to register)."""
    with _lock:
        found = _loaded.get(cid)
    return None if found is None else found.source


def effect_cids(config: Any) -> set[str]:
    """The user effects a node config (or a recipe's steps, a CHAIN's configs) names, at any depth."""
    return set(_walk(config))


def _walk(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "effect" and isinstance(item, str) and is_user_effect_name(item):
                yield item
            else:
                yield from _walk(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _walk(item)
