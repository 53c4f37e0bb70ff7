"""A reader for the S-expression text users write: effects (`define-effect`) and recipes (`recipe`).

It only reads: text becomes nested values that carry where they were written, so that
whoever gives them meaning can say "line 3, column 7: …". Nothing here evaluates.

- `( … )` lists and `[ … ]` vectors (both `SList`, `kind` tells them apart); `{:k v …}` maps;
- strings in double quotes with `\\n \\t \\" \\\\`; integers, decimals and exponents;
- `:keywords`, symbols (`frame`, `->`, `rgb->hsv`, `+`), `true` / `false` / `nil`;
- `;` starts a comment to the end of the line.

The text and its nesting are bounded (`MAX_TEXT_CHARS`, `MAX_DEPTH`, `MAX_NODES`): a reader of
untrusted text must not be made to recurse or allocate without limit.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Literal

from artdag_common.errors import InvalidInputError

MAX_TEXT_CHARS = 256 * 1024
MAX_DEPTH = 64
MAX_NODES = 20_000


class SexpError(InvalidInputError):
    """Text that is not a well-formed S-expression, or a form that means nothing: where, and why."""

    def __init__(self, message: str, line: int, column: int, *, field: str | None = None) -> None:
        self.line, self.column = line, column
        super().__init__(f"line {line}, column {column}: {message}", field=field)


@dataclass(frozen=True)
class Pos:
    """Where a value starts in the text (1-based)."""

    line: int
    column: int

    def error(self, message: str, *, field: str | None = None) -> SexpError:
        return SexpError(message, self.line, self.column, field=field)


@dataclass(frozen=True)
class Symbol:
    name: str
    pos: Pos = field(compare=False)


@dataclass(frozen=True)
class Keyword:
    name: str  # without the colon
    pos: Pos = field(compare=False)


@dataclass(frozen=True)
class Atom:
    """A literal: a number, a string, a boolean or nil (None)."""

    value: int | float | str | bool | None
    pos: Pos = field(compare=False)


@dataclass(frozen=True)
class SList:
    items: tuple[Value, ...]
    pos: Pos = field(compare=False)
    kind: Literal["list", "vector"] = "list"


@dataclass(frozen=True)
class SMap:
    entries: tuple[tuple[Keyword, Value], ...]
    pos: Pos = field(compare=False)


Value = Symbol | Keyword | Atom | SList | SMap

_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_SYMBOL_CHARS = re.compile(r"[^\s()\[\]{}\";]+")
_CLOSERS = {"(": ")", "[": "]", "{": "}"}


class _Reader:
    def __init__(self, text: str) -> None:
        if len(text) > MAX_TEXT_CHARS:
            raise SexpError(f"the text is over {MAX_TEXT_CHARS:,} characters", 1, 1)
        self.text = text
        self.at = 0
        self.line = 1
        self.line_start = 0
        self.nodes = 0

    def pos(self) -> Pos:
        return Pos(self.line, self.at - self.line_start + 1)

    def skip_blank(self) -> None:
        text = self.text
        while self.at < len(text):
            ch = text[self.at]
            if ch == "\n":
                self.at += 1
                self.line += 1
                self.line_start = self.at
            elif ch.isspace() or ch == ",":
                self.at += 1
            elif ch == ";":
                end = text.find("\n", self.at)
                self.at = len(text) if end == -1 else end
            else:
                return

    def read_all(self) -> list[Value]:
        values: list[Value] = []
        while True:
            self.skip_blank()
            if self.at >= len(self.text):
                return values
            values.append(self.read(0))

    def read(self, depth: int) -> Value:
        if depth > MAX_DEPTH:
            raise self.pos().error(f"nested deeper than {MAX_DEPTH} levels")
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.pos().error(f"more than {MAX_NODES:,} values")
        self.skip_blank()
        pos = self.pos()
        if self.at >= len(self.text):
            raise pos.error("the text ends where a value was expected")
        ch = self.text[self.at]
        if ch in _CLOSERS:
            return self.read_seq(ch, pos, depth)
        if ch in ")]}":
            raise pos.error(f"unexpected {ch!r}: nothing is open here")
        if ch == '"':
            return Atom(self.read_string(pos), pos)
        match = _SYMBOL_CHARS.match(self.text, self.at)
        if match is None:  # a character the patterns above leave nothing for
            raise pos.error(f"unexpected {ch!r}")
        token = match.group(0)
        self.at = match.end()
        return self.token(token, pos)

    def read_seq(self, opener: str, pos: Pos, depth: int) -> Value:
        closer = _CLOSERS[opener]
        self.at += 1
        items: list[Value] = []
        while True:
            self.skip_blank()
            if self.at >= len(self.text):
                raise pos.error(f"{opener!r} is never closed (expected {closer!r})")
            ch = self.text[self.at]
            if ch == closer:
                self.at += 1
                break
            if ch in ")]}":
                raise self.pos().error(f"{ch!r} closes the {opener!r} at line {pos.line}, column {pos.column}")
            items.append(self.read(depth + 1))
        if opener != "{":
            return SList(tuple(items), pos, "list" if opener == "(" else "vector")
        if len(items) % 2:
            raise pos.error("a map needs a value for every :key")
        entries: list[tuple[Keyword, Value]] = []
        for key, value in zip(items[::2], items[1::2], strict=True):
            if not isinstance(key, Keyword):
                raise key.pos.error("a map's keys are :keywords")
            entries.append((key, value))
        return SMap(tuple(entries), pos)

    def read_string(self, pos: Pos) -> str:
        out: list[str] = []
        self.at += 1
        escapes = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}
        while self.at < len(self.text):
            ch = self.text[self.at]
            if ch == '"':
                self.at += 1
                return "".join(out)
            if ch == "\\":
                nxt = self.text[self.at + 1 : self.at + 2]
                if nxt not in escapes:
                    raise self.pos().error(f'unknown escape \\{nxt} in a string (known: \\n \\t \\" \\\\)')
                out.append(escapes[nxt])
                self.at += 2
                continue
            if ch == "\n":
                self.line += 1
                self.line_start = self.at + 1
            out.append(ch)
            self.at += 1
        raise pos.error("a string is never closed")

    def token(self, token: str, pos: Pos) -> Value:
        if token.startswith(":"):
            if len(token) == 1 or not re.fullmatch(r":[A-Za-z_][A-Za-z0-9_\-]*", token):
                raise pos.error(f"{token!r} is no keyword (like :name)")
            return Keyword(token[1:], pos)
        if _NUMBER.fullmatch(token):
            number: int | float = float(token) if any(c in token for c in ".eE") else int(token)
            if isinstance(number, float) and not math.isfinite(number):
                raise pos.error(f"{token} is too large a number")
            if isinstance(number, int) and abs(number) > 2**53:
                raise pos.error(f"{token} is too large a number")
            return Atom(number, pos)
        if token == "true":
            return Atom(True, pos)
        if token == "false":
            return Atom(False, pos)
        if token == "nil":
            return Atom(None, pos)
        if token[0].isdigit():
            raise pos.error(f"{token!r} is neither a number nor a name")
        return Symbol(token, pos)


def read(text: str) -> list[Value]:
    """Every top-level value in `text`, in order."""
    return _Reader(text).read_all()


def read_one(text: str, what: str) -> Value:
    """The one top-level value `text` must hold (`what` names it in errors: "an effect")."""
    values = read(text)
    if not values:
        raise SexpError(f"the text holds nothing: {what} was expected", 1, 1)
    if len(values) > 1:
        raise values[1].pos.error(f"the text holds more than {what}: one form only")
    return values[0]


def head(value: Value) -> str | None:
    """The name a list starts with (`define-effect` in `(define-effect …)`), or None."""
    if isinstance(value, SList) and value.kind == "list" and value.items and isinstance(value.items[0], Symbol):
        return value.items[0].name
    return None
