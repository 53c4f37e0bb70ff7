"""Compact wire form for large payloads (a big run's state, a long plan).

NATS messages and KV values are limited (1 MiB by default); JSON of a run with
thousands of steps is larger but compresses about tenfold. Small payloads stay plain
JSON, readable with any NATS tool.
"""

from __future__ import annotations

import zlib

COMPRESS_ABOVE = 64 * 1024
_MARK = b"\x00z"  # JSON never starts with a NUL byte


def pack(data: bytes) -> bytes:
    """`data` as is when small, else zlib-compressed behind a marker."""
    if len(data) <= COMPRESS_ABOVE:
        return data
    # Level 1: a third of the size at a fraction of the time of the default; this runs on every event.
    return _MARK + zlib.compress(data, 1)


def unpack(data: bytes) -> bytes:
    """The original bytes of something `pack` made (plain data passes through)."""
    if data.startswith(_MARK):
        return zlib.decompress(data[len(_MARK) :])
    return data
