"""HTTP Range requests (a single byte range), so that videos seek in a browser."""

from __future__ import annotations

import re

from artdag_common.errors import InvalidInputError

_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiableError(InvalidInputError):
    """The range lies outside the content (HTTP 416)."""

    code = "range"


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """`(start, end)` inclusive, or None for the whole body; multi-ranges are served whole."""
    if not header:
        return None
    match = _RANGE_RE.match(header.strip())
    if match is None:
        if header.strip().startswith("bytes=") and "," in header:
            return None
        raise RangeNotSatisfiableError(f"cannot parse Range {header!r}", field="range")
    first, last = match.groups()
    if not first and not last:
        raise RangeNotSatisfiableError("empty range", field="range")
    if not first:  # suffix: the last N bytes
        length = int(last)
        if length == 0:
            raise RangeNotSatisfiableError("zero-length suffix range", field="range")
        return max(0, size - length), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if start >= size or end < start:
        raise RangeNotSatisfiableError(f"range {header!r} is outside 0-{size - 1}", field="range")
    return start, min(end, size - 1)
