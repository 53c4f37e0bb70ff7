"""Crash points: where a test may have a service die, to prove that what it was doing is not lost.

`ARTDAG_CRASH_POINTS` (a comma-separated list of point names; unset in any real deployment) makes
the process exit at once, as a SIGKILL would leave it, the first time it reaches one of them; a
marker file under the home dir makes it once per stack, so the restarted process goes on.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

CRASH_EXIT_CODE = 137  # what a shell reports for a process killed by SIGKILL


def crash_point(name: str) -> None:
    """Exit here, without cleaning up, if `name` is one of ``ARTDAG_CRASH_POINTS`` not yet crashed at."""
    wanted = os.environ.get("ARTDAG_CRASH_POINTS")
    if not wanted or name not in {point.strip() for point in wanted.split(",")}:
        return
    home = Path(os.environ.get("ARTDAG_HOME") or ".")
    marker = home / f"crashed-at-{name.replace(':', '-')}"
    try:
        marker.open("x").close()
    except FileExistsError:
        return
    except OSError:
        return  # no marker, no crash: a crash point must never crash for good
    log.warning("crash point %s: exiting now (ARTDAG_CRASH_POINTS)", name)
    logging.shutdown()
    os._exit(CRASH_EXIT_CODE)
