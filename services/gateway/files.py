"""Files on the server's own disk that the gateway reads: a file `POST /cache/import` brings in (only
from under IMPORT_DIRS, checked so that no path, symlink or swap escapes them), and files it spooled."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

from artdag_common.errors import BadRequestError, ForbiddenError, NotFoundError
from artdag_common.media_types import SNIFF_BYTES

CHUNK = 1024 * 1024

OUTSIDE_IMPORT_DIRS = "the path is outside the import directories (IMPORT_DIRS)"


def open_importable(raw: str, roots: list[Path]) -> tuple[int, Path]:
    """Open `raw` for reading if it is a regular file under one of `roots`; the fd and its real path.

    Containment is decided before anything about the path is disclosed: a path outside the roots
    answers the same 403 whether or not it exists (no file-existence oracle). It must lie under a
    root as written and again with symlinks resolved; the file is then opened without following a
    final symlink and without blocking on a FIFO, and the opened descriptor's real path is checked
    once more, so a path swapped between the check and the open cannot escape the roots.
    """
    if not roots:
        raise ForbiddenError("importing is off: the server has no IMPORT_DIRS", field="path")
    if not raw or "\x00" in raw:
        raise BadRequestError("a path to import is required", field="path")
    path = Path(raw)
    if not path.is_absolute():
        raise BadRequestError("the path to import must be absolute", field="path")

    real_roots = [root.resolve() for root in roots]

    def inside(candidate: Path, under: list[Path] = real_roots) -> bool:
        return any(candidate == root or candidate.is_relative_to(root) for root in under)

    # As written, `..` folded and nothing on disk asked yet: under a root as configured or as resolved.
    if not inside(Path(os.path.normpath(path)), [Path(os.path.normpath(root)) for root in roots] + real_roots):
        raise ForbiddenError(OUTSIDE_IMPORT_DIRS, field="path")
    try:
        real = path.resolve()  # symlinks followed as far as they exist
    except (OSError, RuntimeError):  # a symlink loop
        raise ForbiddenError(OUTSIDE_IMPORT_DIRS, field="path") from None
    if not inside(real):
        raise ForbiddenError(OUTSIDE_IMPORT_DIRS, field="path")
    if not real.exists():
        raise NotFoundError(f"no such file: {raw}", field="path")
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except PermissionError:
        raise ForbiddenError("the server may not read this file", field="path") from None
    except OSError as exc:
        raise BadRequestError(f"cannot open the file: {exc.strerror}", field="path") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = (
                "a directory"
                if stat.S_ISDIR(mode)
                else "a FIFO"
                if stat.S_ISFIFO(mode)
                else "a device"
                if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "not a regular file"
            )
            raise BadRequestError(f"only regular files can be imported; this is {kind}", field="path")
        opened = Path(f"/proc/self/fd/{fd}").readlink() if Path("/proc/self/fd").is_dir() else real
        if not inside(opened):
            raise ForbiddenError(OUTSIDE_IMPORT_DIRS, field="path")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd, real


def read_head(path: Path) -> bytes:
    """The first bytes of `path`: enough to tell its media type."""
    with open(path, "rb") as handle:
        return handle.read(SNIFF_BYTES)


async def file_chunks(path: Path) -> AsyncIterator[bytes]:
    """`path`'s bytes, a chunk at a time, read off the event loop."""
    with open(path, "rb") as handle:
        while chunk := await asyncio.to_thread(handle.read, CHUNK):
            yield chunk
