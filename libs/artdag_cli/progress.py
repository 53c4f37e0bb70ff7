"""The live progress line of `artdag render`: steps done / total, the current step, frames and ETA."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

BAR = 24


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "ETA --"
    seconds = max(0, round(seconds))
    return f"ETA {seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"ETA {seconds}s"


class Progress:
    """Turns run states into one progress line; `frames` (step id → frames) comes from the dry-run plan."""

    def __init__(self, frames: dict[str, int] | None = None, stream: TextIO | None = None) -> None:
        self.frames = frames or {}
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.started = time.monotonic()
        self.last = ""

    def line(self, state: dict[str, Any], now: float | None = None) -> str:
        """The progress line for one run state (pure: for tests and for `update`)."""
        steps: dict[str, dict[str, Any]] = state.get("steps") or {}
        total = len(steps)
        done_ids = [sid for sid, s in steps.items() if s.get("status") in ("completed", "cached")]
        running = [s.get("name", sid) for sid, s in steps.items() if s.get("status") == "running"]
        total_frames = sum(self.frames.get(sid, 0) for sid in steps)
        done_frames = sum(self.frames.get(sid, 0) for sid in done_ids)
        fraction = done_frames / total_frames if total_frames else (len(done_ids) / total if total else 0.0)
        if state.get("status") == "completed":
            fraction = 1.0
        elapsed = (time.monotonic() if now is None else now) - self.started
        eta = elapsed * (1 - fraction) / fraction if 0 < fraction < 1 else (0.0 if fraction >= 1 else None)
        filled = int(fraction * BAR)
        parts = [
            f"[{'#' * filled}{'-' * (BAR - filled)}] {fraction:4.0%}",
            f"{len(done_ids)}/{total} steps",
            f"{done_frames}/{total_frames} frames" if total_frames else "",
            f"{state.get('status', '?')}" + (f": {running[0]}" if running else ""),
            _eta(eta),
        ]
        return "  ".join(p for p in parts if p)

    def update(self, state: dict[str, Any]) -> None:
        text = self.line(state)
        if self.tty:
            print(f"\r\x1b[2K{text}", end="", file=self.stream, flush=True)
        elif text.split("ETA")[0] != self.last.split("ETA")[0]:  # in a log: one line per change
            print(text, file=self.stream, flush=True)
        self.last = text

    def finish(self) -> None:
        if self.tty:
            print(file=self.stream)
