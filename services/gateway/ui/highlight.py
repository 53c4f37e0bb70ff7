"""Source as HTML with line numbers and simple highlighting: YAML recipes (keys, strings, numbers,
comments) and effects' S-expressions (function names, keywords, strings, numbers, comments)."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

from markupsafe import Markup

from artdag_common.recipe import is_sexp_recipe

_TOKEN = re.compile(
    r"""(?P<c>\s\#.*$|^\#.*$)"""
    r"""|(?P<k>^\s*(?:-\s+)?[A-Za-z_][\w.-]*(?=\s*:(\s|$)))"""
    r"""|(?P<k2>(?<=[{,]\s)[A-Za-z_][\w.-]*(?=:\s)|(?<=\{)[A-Za-z_][\w.-]*(?=:\s))"""
    r"""|(?P<s>"(?:[^"\\]|\\.)*"|'(?:[^']|'')*')"""
    r"""|(?P<n>(?<![\w.])-?\d+(?:\.\d+)?(?![\w.]))"""
    r"""|(?P<p>[\[\]{}:,]|^\s*-(?=\s))"""
)
_LINE_RE = re.compile(r"line (\d+)")


def _line(text: str) -> str:
    out: list[str] = []
    pos = 0
    for match in _TOKEN.finditer(text):
        out.append(html.escape(text[pos : match.start()]))
        kind = match.lastgroup or "p"
        kind = "k" if kind == "k2" else kind
        token = match.group()
        if kind == "k" and token.lstrip().startswith("-"):
            dash, _, key = token.partition("-")
            out.append(f'{html.escape(dash)}<span class="p">-</span>')
            lead = key[: len(key) - len(key.lstrip())]
            out.append(f'{lead}<span class="k">{html.escape(key.lstrip())}</span>')
        else:
            out.append(f'<span class="{kind}">{html.escape(token)}</span>')
        pos = match.end()
    out.append(html.escape(text[pos:]))
    return "".join(out)


def _numbered(text: str, error_lines: set[int] | frozenset[int], line: Callable[[str], str]) -> Markup:
    rows = []
    for number, row in enumerate(text.splitlines() or [""], start=1):
        cls = "ln err" if number in error_lines else "ln"
        rows.append(f'<span class="{cls}" data-n="{number}" id="L{number}">{line(row)}</span>')
    return Markup(f'<pre class="source">{"".join(rows)}</pre>')


def highlight_yaml(text: str, error_lines: set[int] | frozenset[int] = frozenset()) -> Markup:
    """A <pre> of numbered lines; lines in `error_lines` (1-based) are marked."""
    return _numbered(text, error_lines, _line)


# One line of an S-expression: a comment, a string, a keyword, a number, a bracket, or the name a call starts with.
_SEXP_TOKEN = re.compile(
    r"""(?P<c>;.*$)"""
    r"""|(?P<s>"(?:[^"\\]|\\.)*"?)"""
    r"""|(?P<k>(?<=\()\s*[^\s()\[\]{}";]+)"""
    r"""|(?P<n>(?<![\w.-])-?\d+(?:\.\d+)?(?![\w.]))"""
    r"""|(?P<kw>:[A-Za-z_][\w-]*)"""
    r"""|(?P<p>[()\[\]{}])"""
)


def _sexp_line(text: str) -> str:
    out: list[str] = []
    pos = 0
    for match in _SEXP_TOKEN.finditer(text):
        out.append(html.escape(text[pos : match.start()]))
        kind = match.lastgroup or "p"
        out.append(f'<span class="{kind}">{html.escape(match.group())}</span>')
        pos = match.end()
    out.append(html.escape(text[pos:]))
    return "".join(out)


def highlight_sexp(text: str, error_lines: set[int] | frozenset[int] = frozenset()) -> Markup:
    """An effect's source as a <pre> of numbered lines; lines in `error_lines` (1-based) are marked."""
    return _numbered(text, error_lines, _sexp_line)


def highlight_effect(text: str, error_lines: set[int] | frozenset[int] = frozenset()) -> Markup:
    """An effect's source: the effect language highlighted, a Python effect's lines as written."""
    from artdag_effects.user import is_python_source  # the effects library loads on first use

    if is_python_source(text):
        return _numbered(text, error_lines, html.escape)
    return highlight_sexp(text, error_lines)


def highlight_recipe(text: str, error_lines: set[int] | frozenset[int] = frozenset()) -> Markup:
    """A recipe's source, highlighted as what it is: YAML, or an S-expression recipe."""
    highlight = highlight_sexp if is_sexp_recipe(text) else highlight_yaml
    return highlight(text, error_lines)


def error_line(message: str) -> int | None:
    """The source line an error message names ("… line 7, column 3"), if any."""
    match = _LINE_RE.search(message)
    return int(match.group(1)) if match else None
