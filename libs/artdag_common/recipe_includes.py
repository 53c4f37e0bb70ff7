"""What an S-expression recipe includes: stored texts named by CID, verified, per process.

`(include :cid Qm…)` in a recipe (or in a text it includes) stands for the forms of that stored
text, evaluated where the include stands (`recipe_sexp`). Only a CID can be included: never a
path or a URL, and nothing is fetched from a gateway. A service that parses such a recipe first
reads what it includes from its content store (`load_includes`); the parser, which is synchronous
and reads no store, then finds each text here. Bytes that do not hash to their CID are refused.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator

from artdag_common.cid import cid_of_bytes, validate_cid
from artdag_common.errors import InvalidCidError, InvalidInputError, NotFoundError, PayloadTooLargeError
from artdag_common.sexp import Atom, Keyword, SexpError, SList, SMap, Value, head, read

MAX_INCLUDE_BYTES = 256 * 1024
MAX_INCLUDES = 32
"""Texts one recipe may include, counting those its includes include."""
MAX_INCLUDE_DEPTH = 8
MAX_LOADED = 256

ReadContent = Callable[[str, int], Awaitable[bytes]]
"""Reads a cid's bytes, at most the given number (`PayloadTooLargeError` past it); `NotFoundError` when absent."""

_FIELD = "recipe"
_loaded: OrderedDict[str, str] = OrderedDict()
_lock = threading.Lock()


def included_text(cid: str) -> str | None:
    """The verified text stored under `cid`, if this process has read it (`load_includes`)."""
    with _lock:
        text = _loaded.get(cid)
        if text is not None:
            _loaded.move_to_end(cid)
        return text


def register_include(cid: str, data: bytes) -> str:
    """Keep the text `data` under `cid` for recipes to include; refused unless it hashes to `cid`,
    is UTF-8 and reads as S-expressions."""
    if len(data) > MAX_INCLUDE_BYTES:
        raise InvalidInputError(f"include {cid}: the text is over {MAX_INCLUDE_BYTES:,} bytes", field=_FIELD)
    if cid_of_bytes(data, 0 if cid.startswith("Qm") else 1) != cid:
        raise InvalidInputError(f"include {cid}: the bytes read do not hash to that CID", field=_FIELD)
    try:
        text = data.decode("utf-8")
        read(text)
    except UnicodeDecodeError:
        raise InvalidInputError(f"include {cid}: the text is not UTF-8", field=_FIELD) from None
    except SexpError as exc:
        raise InvalidInputError(f"include {cid}: not S-expressions: {exc.message}", field=_FIELD) from None
    with _lock:
        _loaded[cid] = text
        while len(_loaded) > MAX_LOADED:
            _loaded.popitem(last=False)
    return text


def includes_named(text: str) -> list[str]:
    """The CIDs the `(include … :cid CID)` forms of an S-expression text name, in order; none when the
    text does not read (the parser says why) or names a CID badly (so does the parser)."""
    try:
        forms = read(text)
    except SexpError:
        return []
    found: list[str] = []
    for form in _walk(forms):
        if head(form) == "include" and isinstance(form, SList):
            cid = _cid_of(form)
            if cid is not None and cid not in found:
                found.append(cid)
    return found


async def load_includes(text: str, read_content: ReadContent) -> None:
    """Read, verify and keep every text `text` includes (and what those include) this process has not.

    `InvalidInputError` for an include that is not stored, not valid, or past `MAX_INCLUDES` texts
    or `MAX_INCLUDE_DEPTH` levels.
    """
    seen: set[str] = set()
    level = includes_named(text)
    depth = 0
    while level:
        depth += 1
        if depth > MAX_INCLUDE_DEPTH:
            raise InvalidInputError(f"includes nest more than {MAX_INCLUDE_DEPTH} levels deep", field=_FIELD)
        deeper: list[str] = []
        for cid in level:
            if cid in seen:
                continue
            seen.add(cid)
            if len(seen) > MAX_INCLUDES:
                raise InvalidInputError(f"a recipe includes more than {MAX_INCLUDES} texts", field=_FIELD)
            included = included_text(cid)
            if included is None:
                included = register_include(cid, await _read(cid, read_content))
            deeper.extend(includes_named(included))
        level = deeper


async def _read(cid: str, read_content: ReadContent) -> bytes:
    try:
        return await read_content(cid, MAX_INCLUDE_BYTES)
    except NotFoundError:
        raise InvalidInputError(
            f"include {cid}: no text with that CID is stored (upload it first: `artdag upload FILE`)", field=_FIELD
        ) from None
    except PayloadTooLargeError:
        raise InvalidInputError(f"include {cid}: the text is over {MAX_INCLUDE_BYTES:,} bytes", field=_FIELD) from None


def _cid_of(form: SList) -> str | None:
    items = form.items
    for at, item in enumerate(items[:-1]):
        value = items[at + 1]
        if isinstance(item, Keyword) and item.name == "cid" and isinstance(value, Atom):
            if not isinstance(value.value, str):
                return None
            try:
                return validate_cid(value.value)
            except InvalidCidError:
                return None
    return None


def _walk(values: list[Value]) -> Iterator[Value]:
    stack = list(reversed(values))
    while stack:
        value = stack.pop()
        yield value
        if isinstance(value, SList):
            stack.extend(reversed(value.items))
        elif isinstance(value, SMap):
            stack.extend(v for _, v in reversed(value.entries))
