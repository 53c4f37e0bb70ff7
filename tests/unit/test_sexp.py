"""The S-expression reader: values with their positions, and hostile text refused with where and why."""

from __future__ import annotations

import pytest

from artdag_common.sexp import (
    MAX_DEPTH,
    MAX_TEXT_CHARS,
    Atom,
    Keyword,
    SexpError,
    SList,
    SMap,
    Symbol,
    head,
    read,
    read_one,
)


def test_forms_read_with_their_positions() -> None:
    text = (
        '; an effect\n(define-effect tint\n  :params [(amount :default 0.5)]\n  {:label "a \\"b\\"\\n"} -1.5e2 7 nil)'
    )
    (form,) = read(text)
    assert isinstance(form, SList) and form.kind == "list" and head(form) == "define-effect"
    assert (form.pos.line, form.pos.column) == (2, 1)
    name, params_key, params, label, number, count, nothing = form.items[1:]
    assert name == Symbol("tint", name.pos) and (name.pos.line, name.pos.column) == (2, 16)
    assert isinstance(params_key, Keyword) and params_key.name == "params"
    assert isinstance(params, SList) and params.kind == "vector"
    assert isinstance(label, SMap) and label.entries[0][1] == Atom('a "b"\n', label.pos)
    assert (number, count, nothing) == (Atom(-150.0, number.pos), Atom(7, count.pos), Atom(None, nothing.pos))
    assert isinstance(count, Atom) and isinstance(count.value, int)


def test_symbols_cover_the_names_users_write() -> None:
    (form,) = read("(-> a rgb->hsv + <= *1 slice-on x?)")
    assert isinstance(form, SList)
    assert [v.name for v in form.items if isinstance(v, Symbol)] == [
        "->",
        "a",
        "rgb->hsv",
        "+",
        "<=",
        "*1",
        "slice-on",
        "x?",
    ]


@pytest.mark.parametrize(
    ("text", "line", "column", "words"),
    [
        ("(a (b c)", 1, 1, "never closed"),
        ("(a b))", 1, 6, "nothing is open"),
        ("(a\n  [b)", 2, 5, "closes the '['"),
        ('"abc', 1, 1, "string is never closed"),
        ('"a\\q"', 1, 3, "unknown escape"),
        ("{:a}", 1, 1, "a value for every :key"),
        ("{a 1}", 1, 2, "keys are :keywords"),
        ("(: x)", 1, 2, "no keyword"),
        ("(9lives)", 1, 2, "neither a number nor a name"),
        ("1e999", 1, 1, "too large"),
        ("99999999999999999999", 1, 1, "too large"),
    ],
)
def test_malformed_text_says_where_and_why(text: str, line: int, column: int, words: str) -> None:
    with pytest.raises(SexpError) as raised:
        read(text)
    assert (raised.value.line, raised.value.column) == (line, column)
    assert words in raised.value.message and raised.value.message.startswith(f"line {line}, column {column}: ")


def test_hostile_sizes_are_refused_before_they_cost_anything() -> None:
    with pytest.raises(SexpError, match="nested deeper"):
        read("(" * (MAX_DEPTH + 5) + ")" * (MAX_DEPTH + 5))
    with pytest.raises(SexpError, match="characters"):
        read("a " * (MAX_TEXT_CHARS // 2 + 1))
    with pytest.raises(SexpError, match="more than"):
        read("(" + " 1" * 30_000 + ")")


def test_one_form_is_one_form() -> None:
    assert head(read_one("(recipe x)", "a recipe")) == "recipe"
    with pytest.raises(SexpError, match="holds nothing: a recipe was expected"):
        read_one("; nothing", "a recipe")
    with pytest.raises(SexpError, match=r"line 2, column 1: .*one form only"):
        read_one("(recipe x)\n(recipe y)", "a recipe")
