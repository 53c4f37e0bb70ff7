"""The media zoo: odd and hostile files, each uploaded and blurred on a real stack.

Every case completes or fails with an error that says what is wrong, and no process of the
stack (executor workers, analyzer, every other service) ever holds more than 1 GiB: the
decode bombs (a few KB declaring 16000x16000 pictures, in the header or half-way through the
stream) are refused before a decoder allocates their pictures. The files are made by the test
(tests/zoo.py) and all cases run at once on one stack.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Stack, running_stack
from tests.zoo import ZOO

pytestmark = pytest.mark.e2e

GIB = 2**30
RECIPE = """
name: zoo-blur
inputs: [video]
steps:
  - {id: soft, type: EFFECT, inputs: [video], config: {effect: blur, params: {radius: 1.5}}}
output: soft
"""
# What becomes of each case: "completed", or where it fails ("refused": 422 at submit; "failed":
# the run fails) and words its error must hold.
EXPECTED: dict[str, tuple[str, str]] = {
    "zero-bytes": ("failed", "cannot be opened as a supported media file"),
    "junk": ("failed", "cannot be opened as a supported media file"),
    "truncated-mp4": ("failed", "cannot be decoded"),
    "mp4-without-moov": ("failed", "cannot be opened as a supported media file"),
    "png": ("failed", "cannot be opened as a supported media file"),
    "jpeg": ("failed", "cannot be opened as a supported media file"),
    "audio-only": ("refused", "the recipe wants video here"),
    "variable-frame-rate": ("completed", ""),
    "rotation-tag": ("completed", ""),
    "odd-size-17x9": ("completed", ""),
    "10-bit": ("completed", ""),
    "yuv444": ("completed", ""),
    "vp9": ("completed", ""),
    "mjpeg": ("completed", ""),
    "interlaced": ("completed", ""),
    "5.1-audio": ("completed", ""),
    "one-frame": ("completed", ""),
    "decode-bomb": ("refused", "16000x16000 frames are over the limit of 33,177,600 pixels (ARTDAG_MAX_INPUT_PIXELS)"),
    "late-decode-bomb": ("failed", "cannot be decoded"),
}


def _peak_rss(pid: int) -> int | None:
    """A process's peak resident set (VmHWM), in bytes."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _role(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    text = " ".join(part.decode(errors="replace") for part in argv if part)
    if "multiprocessing" in text:
        return "executor worker"
    for part in argv:
        if part.startswith(b"services."):
            return part.decode().removeprefix("services.")
    return Path(argv[0].decode(errors="replace")).name


class PeakWatch:
    """Samples the peak RSS of every process under a stack (workers come and go) until stopped."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.peaks: dict[int, tuple[str, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        for pid in self.stack.descendants():
            peak = _peak_rss(pid)
            if peak is not None:
                role = self.peaks[pid][0] if pid in self.peaks else _role(pid)
                self.peaks[pid] = (role, max(peak, self.peaks.get(pid, ("", 0))[1]))

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self._sample()

    def __enter__(self) -> PeakWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


@pytest.fixture(scope="module")
def zoo_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("zoo-home")
    with running_stack(home, ARTDAG_EXECUTOR_CONCURRENCY="2", ARTDAG_CHUNK_SECONDS="0") as running:
        yield running


def _run_case(http: httpx.Client, name: str, cid: str) -> tuple[str, str]:
    submitted = http.post("/runs", json={"recipe": RECIPE, "inputs": {"video": cid}})
    if submitted.status_code != 202:
        assert submitted.status_code == 422, f"{name}: {submitted.status_code} {submitted.text}"
        return "refused", submitted.json()["detail"]
    run_id = submitted.json()["run_id"]
    deadline = time.monotonic() + 90
    while True:
        run: dict[str, Any] = http.get(f"/runs/{run_id}").json()
        if run["status"] in ("completed", "failed", "cancelled"):
            return run["status"], run.get("error") or ""
        assert time.monotonic() < deadline, f"{name}: run {run_id} did not finish: {run}"
        time.sleep(0.1)


def test_every_case_completes_or_fails_clearly_and_no_process_passes_1_gib(zoo_stack: Stack, tmp_path: Path) -> None:
    assert set(EXPECTED) == set(ZOO)
    files = {name: make(tmp_path / filename) for name, (filename, make) in ZOO.items()}
    with zoo_stack.http(timeout=60) as http, PeakWatch(zoo_stack) as watch:
        cids = {}
        for name, path in files.items():
            uploaded = http.post("/cache/upload", files={"file": (path.name, path.read_bytes())})
            assert uploaded.status_code == 201, f"{name}: {uploaded.text}"
            cids[name] = uploaded.json()["cid"]
        with ThreadPoolExecutor(len(cids)) as pool:
            outcomes = dict(zip(cids, pool.map(lambda item: _run_case(http, *item), cids.items()), strict=True))
            # Derived media of a bomb fail as cleanly as a run does.
            stills = list(
                pool.map(lambda n: http.get(f"/cache/{cids[n]}/thumbnail"), ["decode-bomb", "late-decode-bomb"])
            )

    report = "\n".join(f"  {name:20} {status:9} {error}" for name, (status, error) in outcomes.items())
    peaks = "\n".join(
        f"  {role:16} pid {pid:7} peak {rss / 2**20:7.1f} MiB" for pid, (role, rss) in sorted(watch.peaks.items())
    )
    print(f"\nmedia zoo outcomes:\n{report}\npeak RSS:\n{peaks}")
    home = str(zoo_stack.home)
    for name, (status, error) in outcomes.items():
        want, words = EXPECTED[name]
        assert (status, words in error) == (want, True), f"{name}: {status} {error!r}, expected {want} {words!r}"
        assert "Traceback" not in error and "internal error" not in error and home not in error, f"{name}: {error}"
    for still in stills:
        assert still.status_code == 422, still.text
        assert "ARTDAG_MAX_INPUT_PIXELS" in still.text or "cannot be decoded" in still.text, still.text
    assert any(role == "executor worker" for role, _ in watch.peaks.values()), peaks
    assert {"executor", "analyzer"} <= {role for role, _ in watch.peaks.values()}, peaks
    assert all(rss < GIB for _, rss in watch.peaks.values()), f"a process passed 1 GiB:\n{peaks}"
