"""Waiting out another process's SQLite write lock, sooner than SQLite's own busy handler does.

Several services share the embedded SQLite files (the catalog, the small objects). SQLite's
busy handler sleeps 1, 2, 5, 10… ms between tries, where another process holds the lock for
well under a millisecond: the connections here get no busy timeout and try again themselves.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# How long an attempt keeps being retried while other processes hold the write lock.
BUSY_WAIT_S = 30.0


def is_busy(exc: Exception) -> bool:
    """Whether an SQLite error says the database is locked by someone else (worth a retry)."""
    text = str(exc)
    return "locked" in text or "busy" in text


def retry_while_busy(attempt: Callable[[], T], errors: type[Exception]) -> T:
    """`attempt()`, tried again at once and then every ~0.1–5 ms (for BUSY_WAIT_S) while it raises
    one of `errors` that `is_busy`; any other error, or the last busy one, is raised."""
    deadline = time.monotonic() + BUSY_WAIT_S
    pause = 0.0001
    while True:
        try:
            return attempt()
        except errors as exc:
            if not is_busy(exc) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.005)
