"""Free disk space against the reserve (``ARTDAG_MIN_FREE_BYTES``): refuse new work before the disk is full.

A full disk corrupts nothing here (every object is written aside and renamed into place), but it
stops everything that writes: uploads, renders, the database, JetStream. Keeping a reserve free
means that deleting, reading and finishing what was accepted still work when new work is refused.
"""

from __future__ import annotations

import errno
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


BALLAST_BYTES = 8 * 2**20


class Ballast:
    """A file of real blocks kept on the disk that holds the database, given up when the disk is full.

    Deleting content writes too (the database's journal), so on a disk that something else filled
    to the last byte the deletion that would make room fails. The ballast is that room, kept
    aside: released, the deletion goes through; made again once the disk has room.
    """

    def __init__(self, path: Path, size: int = BALLAST_BYTES) -> None:
        self.path = path
        self.size = size

    def ensure(self) -> bool:
        """Make the ballast if it is missing and the disk has room for it (four times its size); True if it is there."""
        if self.path.exists():
            return True
        if free_bytes(self.path.parent) < 4 * self.size:
            return False
        partial = self.path.with_suffix(".partial")
        try:
            with partial.open("wb") as out:
                block = b"\0" * 2**20
                for _ in range(0, self.size, len(block)):
                    out.write(block)  # written, not truncated: a sparse file would hold no room
            partial.replace(self.path)
        except OSError:
            partial.unlink(missing_ok=True)
            return False
        return True

    def release(self) -> bool:
        """Remove the ballast; True if there was one to give up."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True


def is_disk_full(exc: BaseException) -> bool:
    """Whether `exc` (or what it wraps) says the disk is full: ENOSPC, or SQLite's SQLITE_FULL."""
    seen: BaseException | None = exc
    for _ in range(8):  # the chain of causes, not followed forever
        if seen is None:
            break
        if isinstance(seen, OSError) and seen.errno == errno.ENOSPC:
            return True
        if "database or disk is full" in str(seen) or "No space left on device" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
