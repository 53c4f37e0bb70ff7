"""The disk helpers: the reserve check, the ballast, and what counts as a full disk."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from artdag_common.disk import Ballast, ensure_room, is_disk_full
from artdag_common.errors import InsufficientStorageError


def test_the_ballast_holds_real_blocks_and_is_given_up_once(tmp_path: Path) -> None:
    ballast = Ballast(tmp_path / "ballast", size=3 * 2**20)
    assert ballast.ensure()
    assert ballast.path.stat().st_size == 3 * 2**20
    assert ballast.path.stat().st_blocks * 512 >= 3 * 2**20, "not sparse: it holds room on the disk"
    assert ballast.ensure(), "made once"
    assert ballast.release()
    assert not ballast.release(), "nothing left to give up"


def test_no_ballast_is_made_on_a_disk_without_room_for_it(tmp_path: Path) -> None:
    ballast = Ballast(tmp_path / "ballast", size=shutil.disk_usage(tmp_path).free)
    assert not ballast.ensure()
    assert not ballast.path.exists() and not list(tmp_path.iterdir())


def test_a_full_disk_is_known_by_errno_and_by_sqlites_message() -> None:
    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    wrapped = OperationalError("COMMIT", {}, Exception("database or disk is full"))
    assert is_disk_full(wrapped)
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("writing failed") from inner
    except RuntimeError as outer:
        assert is_disk_full(outer), "found through the cause"
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not is_disk_full(OperationalError("SELECT", {}, Exception("database is locked")))


def test_the_reserve_refuses_below_it_and_names_the_setting(tmp_path: Path) -> None:
    ensure_room([tmp_path], 0, "upload")  # 0: no check
    ensure_room([tmp_path], 1, "upload")
    with pytest.raises(InsufficientStorageError, match="ARTDAG_MIN_FREE_BYTES"):
        ensure_room([tmp_path], shutil.disk_usage(tmp_path).free + 2**30, "upload")
