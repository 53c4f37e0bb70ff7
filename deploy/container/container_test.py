"""`make container-test`: the image built and run as compose.yaml says, rendering what `artdag up` renders.

1. `make image`'s script builds every image (no registry: see images.sh).
2. compose.yaml is brought up with podman (compose.py) as a project of its own: NATS, PostgreSQL, the
   migration one-shot, the six services (the executor replicated), the gateway on a free host port.
3. Through that port: a token (`artdag token create` in the auth container), generated media uploaded,
   the beat-sync example recipe run to completion, its output downloaded and checked against its CID.
4. The same media and recipe through `artdag up` on this host; the two output CIDs must be equal.
Everything it started is removed at the end, also on failure (then with the containers' logs).
Exit status 0 only if every step held; it never skips.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import httpx
from compose import ComposeError, ComposeFile, Deployment, podman

from artdag_cli.demo_media import write_click_track, write_test_clip
from artdag_common.cid import cid_of_file
from artdag_common.examples import example_path
from artdag_common.nats_server import free_port
from artdag_common.tokens import load_token

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

RECIPE = "beat-sync"
RENDER_TIMEOUT_S = 300
HEALTHY_TIMEOUT_S = 120


class ContainerTestError(Exception):
    """A step of the test did not hold."""


def say(message: str) -> None:
    print(f"container-test: {message}", file=sys.stderr, flush=True)


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through every `finally`: nothing is left running


def make_media(directory: Path) -> dict[str, Path]:
    """The beat-sync inputs of the end-to-end test: a 4 s clip with a moving box, a 120 BPM click track."""
    video, audio = directory / "video.mp4", directory / "track.wav"
    write_test_clip(video, width=160, height=120, fps=25, duration_s=4.0)
    write_click_track(audio, bpm=120, duration_s=4.2)
    return {"video": video, "audio": audio}


def wait_healthy(url: str, timeout_s: float, alive: Callable[[], None] | None = None) -> None:
    """Until GET /health answers 200 (every service answered over the bus)."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        if alive is not None:
            alive()
        try:
            response = httpx.get(f"{url}/health", timeout=3)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:300]}"
        except httpx.HTTPError as exc:
            last = str(exc) or type(exc).__name__
        time.sleep(0.5)
    raise ContainerTestError(f"{url}/health not 200 within {timeout_s:g} s: {last}")


def render(url: str, token: str, media: dict[str, Path], scratch: Path) -> tuple[dict[str, str], str, float]:
    """Upload the media, run the recipe, download the output and check its bytes against its CID.

    Returns the inputs' CIDs, the output's CID and the seconds from submit to completion.
    """
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        inputs: dict[str, str] = {}
        for name, path in media.items():
            with path.open("rb") as handle:
                response = client.post("/cache/upload", files={"file": (path.name, handle)})
            if response.status_code != 201:
                raise ContainerTestError(f"upload of {path.name}: {response.status_code} {response.text}")
            inputs[name] = response.json()["cid"]
        started = time.monotonic()
        response = client.post("/runs", json={"recipe": example_path(RECIPE).read_text(), "inputs": inputs})
        if response.status_code != 202:
            raise ContainerTestError(f"POST /runs: {response.status_code} {response.text}")
        run_id = response.json()["run_id"]
        deadline = started + RENDER_TIMEOUT_S
        while (run := client.get(f"/runs/{run_id}").json())["status"] not in ("completed", "failed", "cancelled"):
            if time.monotonic() > deadline:
                raise ContainerTestError(f"run {run_id} not finished within {RENDER_TIMEOUT_S} s: {run.get('status')}")
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        if run["status"] != "completed":
            raise ContainerTestError(f"run {run_id} {run['status']}: {run.get('error')}")
        output_cid: str = run["output_cid"]
        out = scratch / f"{run_id}.mp4"
        with client.stream("GET", f"/cache/{output_cid}/raw") as download, out.open("wb") as handle:
            if download.status_code != 200:
                raise ContainerTestError(f"GET /cache/{output_cid}/raw: {download.status_code}")
            for chunk in download.iter_bytes():
                handle.write(chunk)
        if (actual := cid_of_file(out)) != output_cid:
            raise ContainerTestError(f"the output downloaded from {url} hashes to {actual}, not {output_cid}")
        return inputs, output_cid, elapsed


@contextmanager
def deployment(compose_file: Path) -> Iterator[tuple[Deployment, str]]:
    """compose.yaml up as a project of its own with the gateway on a free port; down with its volumes after."""
    port = free_port()
    env = {
        **os.environ,
        "ARTDAG_PUBLISH_ADDRESS": "127.0.0.1",
        "ARTDAG_PUBLISH_PORT": str(port),
        "ARTDAG_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    stack = Deployment(ComposeFile.load(compose_file, env), f"artdag-test-{uuid.uuid4().hex[:8]}")
    try:
        stack.up(timeout_s=HEALTHY_TIMEOUT_S)
        yield stack, f"http://127.0.0.1:{stack.published_port('gateway', 8100)}"
    except BaseException:
        show_logs(stack)
        raise
    finally:
        stack.down(volumes=True)
        left = stack.project_containers()
        if left:
            say(f"left behind: {' '.join(left)}")


def show_logs(stack: Deployment) -> None:
    """Each container's state and the end of its log, those that stopped badly first."""
    states = list(stack.ps())
    if not states:
        return
    say("containers: " + ", ".join(f"{name} {status} ({code})" for name, status, code in states))
    bad = [name for name, status, code in states if status != "running" and code != "0"]
    for name, _, _ in sorted(states, key=lambda s: s[0] not in bad):
        lines = 80 if name in bad else 25
        print(f"----- {name} (last {lines} log lines) -----\n{stack.logs(name, lines)}", file=sys.stderr)


def container_token(stack: Deployment) -> str:
    """An admin token made the way an operator makes one: `artdag token create` in the auth container."""
    auth = stack.containers(stack.compose.service("auth"))[0]
    made = podman("exec", auth, "artdag", "token", "create", "--user", "container-test", "--admin", check=False)
    if made.returncode != 0:
        raise ContainerTestError(f"artdag token create in {auth}: {made.stderr.strip()}")
    return made.stdout.strip()


@contextmanager
def artdag_up(home: Path) -> Iterator[str]:
    """`artdag up` on this host (as tests/e2e start it): its own nats-server, SQLite, a free port."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARTDAG_", "NATS_", "DATABASE_", "CACHE_"))}
    log = home / "up.log"
    home.mkdir(parents=True)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "artdag"), "up", "--home", str(home), "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{port}"

    def alive() -> None:
        if process.poll() is not None:
            raise ContainerTestError(f"artdag up exited with {process.returncode}:\n{log.read_text()[-3000:]}")

    try:
        wait_healthy(url, HEALTHY_TIMEOUT_S, alive)
        yield url
    except BaseException:
        print(f"----- artdag up (end of its log) -----\n{log.read_text()[-3000:]}", file=sys.stderr)
        raise
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> int:
    signal.signal(signal.SIGTERM, _terminate)
    figures: dict[str, str] = {}
    started = time.monotonic()
    try:
        if subprocess.run(["bash", str(HERE / "images.sh")], check=False).returncode != 0:
            raise ContainerTestError("the images could not be built (see above)")
        figures["build"] = f"{time.monotonic() - started:.1f} s (make image)"
        with tempfile.TemporaryDirectory(prefix="artdag-container-test-") as tmp:
            scratch = Path(tmp)
            media = make_media(scratch)
            began = time.monotonic()
            with deployment(ROOT / "compose.yaml") as (stack, url):
                wait_healthy(url, HEALTHY_TIMEOUT_S)
                executors = len(stack.containers(stack.compose.service("executor")))
                figures["start"] = f"{time.monotonic() - began:.1f} s (compose.yaml up, {executors} executors, healthy)"
                say(f"{stack.project} healthy at {url}")
                inputs, in_containers, took = render(url, container_token(stack), media, scratch)
                figures["render"] = f"{took:.1f} s ({RECIPE} through the gateway's published port)"
                figures["output"] = in_containers
            began = time.monotonic()
            with artdag_up(scratch / "host") as host_url:
                figures["start (artdag up)"] = f"{time.monotonic() - began:.1f} s"
                token = load_token(scratch / "host")
                if token is None:
                    raise ContainerTestError("artdag up saved no token")
                host_inputs, on_host, took = render(host_url, token, media, scratch)
                figures["render (artdag up)"] = f"{took:.1f} s"
                figures["output (artdag up)"] = on_host
        if host_inputs != inputs:
            raise ContainerTestError(f"the same files got other CIDs: {host_inputs} here, {inputs} in containers")
        if on_host != in_containers:
            raise ContainerTestError(f"the containers rendered {in_containers}, artdag up rendered {on_host}")
    except (ContainerTestError, ComposeError, httpx.HTTPError) as exc:
        report(figures)
        say(f"FAILED: {exc}")
        print("container-test: 0 passed, 1 failed", flush=True)
        return 1
    figures["total"] = f"{time.monotonic() - started:.1f} s"
    report(figures)
    say(f"compose.yaml's containers and artdag up rendered {RECIPE} to the same CID")
    print("container-test: 1 passed, 0 failed", flush=True)
    return 0


def report(figures: dict[str, str]) -> None:
    for name, value in figures.items():
        say(f"{name:<19} {value}")


if __name__ == "__main__":
    sys.exit(main())
