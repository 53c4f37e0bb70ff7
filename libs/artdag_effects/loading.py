"""Loading the user effects a recipe or a step names, from wherever the caller reads content."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

from artdag_common.errors import InvalidInputError, NotFoundError, PayloadTooLargeError
from artdag_effects.user import MAX_SOURCE_BYTES, register_user_effect, user_effect

if TYPE_CHECKING:
    from artdag_effects.sandbox import PythonEffectPolicy

ReadContent = Callable[[str, int], Awaitable[bytes]]
"""Reads a cid's bytes, at most the given number (`PayloadTooLargeError` past it); `NotFoundError` when absent."""


async def load_user_effects(
    cids: Iterable[str], read: ReadContent, *, python: PythonEffectPolicy | None = None
) -> None:
    """Read, verify and compile each user effect in `cids` this process does not hold yet
    (Python effects only with `python`, the policy they are enabled with)."""
    for cid in sorted(set(cids)):
        if user_effect(cid) is not None:
            continue
        try:
            source = await read(cid, MAX_SOURCE_BYTES)
        except NotFoundError:
            raise InvalidInputError(
                f"effect {cid}: no effect source with that CID is stored (upload it first)", field="effect"
            ) from None
        except PayloadTooLargeError:
            raise InvalidInputError(
                f"effect {cid}: its source is over {MAX_SOURCE_BYTES:,} bytes", field="effect"
            ) from None
        register_user_effect(cid, source, python=python)
