"""The media worker processes of one executor: they end with it.

A worker is its own process (spawned: no inherited event loop or sockets). Should its
executor die without stopping it (SIGKILL, OOM), the kernel kills the worker too, instead
of leaving it to finish a render nobody will collect.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Pool initializer: SIGKILL this process when its parent dies (Linux; elsewhere a no-op)."""
    library = ctypes.util.find_library("c")
    if library is None:
        return
    libc = ctypes.CDLL(library, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return
    if os.getppid() != parent_pid:
        os._exit(1)  # the executor died while this worker was starting
