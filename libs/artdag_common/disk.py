"""Free disk space against the reserve (``ARTDAG_MIN_FREE_BYTES``): refuse new work before the disk is full.

A full disk corrupts nothing here (every object is written aside and renamed into place), but it
stops everything that writes: uploads, renders, the database, JetStream. Keeping a reserve free
means that deleting, reading and finishing what was accepted still work when new work is refused.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from artdag_common.errors import InsufficientStorageError


def free_bytes(path: Path) -> int:
    """Free bytes on the filesystem that holds `path` (or its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def lowest_free(paths: Iterable[Path]) -> tuple[Path, int]:
    """The path with the least free space under it, and that space."""
    found = [(path, free_bytes(path)) for path in paths]
    return min(found, key=lambda item: item[1])


def ensure_room(paths: Iterable[Path], reserve: int, what: str) -> None:
    """Raise `InsufficientStorageError` if any of `paths` has less than `reserve` bytes free (0: no check)."""
    if reserve <= 0:
        return
    path, free = lowest_free(paths)
    if free < reserve:
        raise InsufficientStorageError(
            f"{what} refused: {free // 2**20} MiB free on the disk of {path}, below the reserve of "
            f"{reserve // 2**20} MiB (ARTDAG_MIN_FREE_BYTES); delete content to make room",
            field="disk",
        )
