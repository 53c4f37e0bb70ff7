"""The program a Python effect runs in, inside its sandbox (see `artdag_effects.sandbox`).

It is started as a script (`python -I -S runner.py`) under bubblewrap and needs only the standard
library and numpy. Before any of the effect's code is read it lowers its own CPU-time and memory
limits; then it compiles the effect, calls `process_frame` on each frame the parent sends, and
writes each result back. Everything it sends is checked again by the parent, which trusts none of it.

Protocol (stdin from the parent, the runner's stdout to it; `print` in an effect goes to stderr):

- parent → runner: a message is a little-endian u32 length and that many bytes of JSON. The first
  (setup) holds the source, the frame size, the seed and the limits; each later one holds a frame's
  index, time and parameters and is followed by exactly height·width·3 bytes of RGB. End of input
  ends the runner.
- runner → parent: a reply is one kind byte and a u32 length, then that many bytes: `R` (ready,
  after setup, empty), `F` (a frame: exactly height·width·3 bytes of RGB) or `E` (an error, UTF-8).
  After an `E` the runner exits.
"""

from __future__ import annotations

import json
import linecache
import os
import resource
import struct
import sys
import traceback
import types
from collections.abc import Callable
from io import FileIO
from typing import Any

MESSAGE = struct.Struct("<I")
"""Parent → runner: the length of the JSON message that follows."""
REPLY = struct.Struct("<cI")
"""Runner → parent: the kind of reply and the length of its payload."""
READY, FRAME, ERROR = b"R", b"F", b"E"
MAX_MESSAGE = 1 << 20
"""The largest JSON message the runner reads (a setup holds a source of at most 64 KiB)."""
MAX_ERROR = 2000
"""The longest error text a runner sends (and the parent reads)."""
SITE = "/artdag/site"
"""Where the approved packages are mounted inside the sandbox."""
EFFECT_FILE = "effect.py"
"""The file name the effect's code is compiled under (tracebacks and messages name its lines)."""


class _StopError(Exception):
    """A message to report to the parent before exiting."""


def _read_exact(stream: FileIO, size: int) -> bytearray | None:
    """Exactly `size` bytes, or None at a clean end of input."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        n = stream.readinto(view[got:])
        if not n:
            if got == 0:
                return None
            raise _StopError(f"the input ended inside a message ({got} of {size} bytes)")
        got += n
    return buffer


def _read_message(stream: FileIO) -> dict[str, Any] | None:
    head = _read_exact(stream, MESSAGE.size)
    if head is None:
        return None
    (size,) = MESSAGE.unpack(head)
    if size > MAX_MESSAGE:
        raise _StopError(f"a message of {size} bytes is over the limit")
    body = _read_exact(stream, size)
    if body is None:
        raise _StopError("the input ended inside a message")
    message = json.loads(body)
    if not isinstance(message, dict):
        raise _StopError("a message is a JSON object")
    return message


def _write_all(out: FileIO, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while len(view):
        written = out.write(view)
        view = view[written or 0 :]


def _reply(out: FileIO, kind: bytes, payload: bytes | memoryview = b"") -> None:
    _write_all(out, REPLY.pack(kind, len(payload)))
    _write_all(out, payload)


def _error(out: FileIO, text: str) -> None:
    data = text.encode("utf-8", "replace")[:MAX_ERROR]
    _reply(out, ERROR, data)


def _describe(exc: BaseException, memory_mib: int) -> str:
    """An exception as one line: its type, its message and the effect's line it came from."""
    where = ""
    for entry in reversed(traceback.extract_tb(exc.__traceback__)):
        if entry.filename == EFFECT_FILE:
            where = f" (effect.py line {entry.lineno})"
            break
    if isinstance(exc, SyntaxError) and exc.filename == EFFECT_FILE:
        where = f" (effect.py line {exc.lineno}, column {exc.offset})"
    if isinstance(exc, MemoryError):
        return f"MemoryError: out of memory (the limit is {memory_mib} MiB){where}"
    if isinstance(exc, SystemExit):
        return f"the effect called exit({exc.code!r}){where}"
    message = str(exc) if not isinstance(exc, SyntaxError) else exc.msg
    return f"{type(exc).__name__}: {message}{where}" if message else f"{type(exc).__name__}{where}"


def _lower(limit: int, soft: int, hard: int) -> None:
    """Lower a limit to (soft, hard), never above what it already is."""
    _, current = resource.getrlimit(limit)
    if current != resource.RLIM_INFINITY:
        soft, hard = min(soft, current), min(hard, current)
    resource.setrlimit(limit, (soft, hard))


def _limit(setup: dict[str, Any]) -> None:
    """Lower this process's limits before any of the effect's code exists here (they only go down).

    The CPU limit sends SIGXCPU at `cpu_s` seconds and SIGKILL a second later.
    """
    cpu_s = int(setup["cpu_s"])
    memory = int(setup["memory_mib"]) * 2**20
    _lower(resource.RLIMIT_CPU, cpu_s, cpu_s + 1)
    _lower(resource.RLIMIT_AS, memory, memory)
    _lower(resource.RLIMIT_CORE, 0, 0)
    _lower(resource.RLIMIT_NOFILE, 64, 64)


def _load(source: str) -> Callable[..., Any]:
    """Compile and run the effect's module; its `process_frame`."""
    linecache.cache[EFFECT_FILE] = (len(source), None, source.splitlines(True), EFFECT_FILE)
    module = types.ModuleType("effect")
    module.__file__ = EFFECT_FILE
    sys.modules["effect"] = module
    exec(compile(source, EFFECT_FILE, "exec"), module.__dict__)
    function = module.__dict__.get("process_frame")
    if not callable(function):
        raise _StopError("the effect defines no process_frame(frame, params, state)")
    return function  # type: ignore[no-any-return]


def _to_bytes(result: Any, shape: tuple[int, int, int], np: Any) -> bytes | memoryview:
    """The RGB bytes of what `process_frame` returned, or `_StopError` saying what is wrong with it."""
    if not isinstance(result, np.ndarray):
        raise _StopError(f"process_frame returned a {type(result).__name__} frame, not a numpy array")
    if result.shape != shape:
        raise _StopError(f"process_frame returned an array of shape {tuple(result.shape)}, not {shape}")
    if result.dtype == np.uint8:
        return memoryview(np.ascontiguousarray(result)).cast("B")
    if result.dtype.kind != "f":
        raise _StopError(
            f"process_frame returned {result.dtype} values: return uint8 "
            "(e.g. np.clip(out, 0, 255).astype(np.uint8)) or floats in 0..255"
        )
    if not np.isfinite(result).all():
        raise _StopError("process_frame returned NaN or infinite values")
    return memoryview(np.clip(np.rint(result), 0, 255).astype(np.uint8)).cast("B")


def run(stdin: FileIO, out: FileIO) -> int:
    """Serve one effect: setup, then one reply per frame until the input ends."""
    memory_mib = 0
    try:
        setup = _read_message(stdin)
        if setup is None:
            return 0
        memory_mib = int(setup["memory_mib"])
        _limit(setup)
        sys.path.insert(0, SITE)
        import numpy as np

        shape = (int(setup["height"]), int(setup["width"]), 3)
        process_frame = _load(str(setup["source"]))
    except _StopError as exc:
        _error(out, str(exc))
        return 1
    except BaseException as exc:  # noqa: BLE001 - the effect's module: whatever it raised is its error
        _error(out, _describe(exc, memory_mib))
        return 1
    _reply(out, READY)
    state: Any = None
    size = shape[0] * shape[1] * shape[2]
    while True:
        try:
            message = _read_message(stdin)
            if message is None:
                return 0
            pixels = _read_exact(stdin, size)
            if pixels is None:
                raise _StopError("the input ended before a frame's pixels")
            params = {k: tuple(v) if isinstance(v, list) else v for k, v in dict(message["params"]).items()}
            params.update(_index=int(message["index"]), _time=float(message["time_s"]), _seed=int(setup["seed"]))
            frame = np.frombuffer(pixels, dtype=np.uint8).reshape(shape)
        except _StopError as exc:
            _error(out, str(exc))
            return 1
        try:
            result = process_frame(frame, params, state)
            if isinstance(result, tuple) and len(result) == 2:
                result, state = result
            data = _to_bytes(result, shape, np)
        except _StopError as exc:
            _error(out, str(exc))
            return 1
        except BaseException as exc:  # noqa: BLE001 - the effect's own failure, reported as it is
            _error(out, _describe(exc, memory_mib))
            return 1
        _reply(out, FRAME, data)


def main() -> int:
    """Run with the protocol on the original stdin and stdout; the effect's prints go to stderr."""
    stdin = os.fdopen(0, "rb", buffering=0)
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    return run(stdin, out)


if __name__ == "__main__":
    sys.exit(main())
