"""Helpers for tests: a real nats-server per session, isolated names, frame comparison."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from artdag_common.nats_server import EmbeddedNatsServer


@contextmanager
def nats_server(store_dir: Path) -> Iterator[EmbeddedNatsServer]:
    """A real JetStream server on a free loopback port, stopped on exit."""
    with EmbeddedNatsServer(store_dir, log_file=store_dir / "nats-server.log") as server:
        yield server


def unique(prefix: str) -> str:
    """A name no other test uses (streams, buckets, subjects)."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def frame_difference(expected: NDArray[np.uint8], actual: NDArray[np.uint8]) -> tuple[float, float]:
    """Mean and max absolute difference of two frames of the same shape."""
    if expected.shape != actual.shape:
        raise AssertionError(f"frame shapes differ: {expected.shape} vs {actual.shape}")
    diff = np.abs(expected.astype(np.int16) - actual.astype(np.int16))
    return float(diff.mean()), float(diff.max())
