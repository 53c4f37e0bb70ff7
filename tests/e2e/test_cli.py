"""The `artdag` command line, run as a subprocess against the stack (the way a user runs it)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import av
import httpx
import pytest

from artdag_cli.demo_media import write_test_clip
from artdag_common.examples import example_path
from tests.e2e.conftest import CLI, Stack, clean_env

pytestmark = pytest.mark.e2e


def artdag(stack: Stack, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(CLI), *args],
        env={**stack.cli_env(), "ARTDAG_SERVER": stack.url},  # the token `artdag up` saved, as a user has it
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if check:
        assert done.returncode == 0, f"artdag {' '.join(args)} → {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "cli-clip.mp4"
    write_test_clip(path, width=176, height=96, fps=12, duration_s=1.0, tone_hz=701.0)
    return path


def test_upload_and_cid_agree(stack: Stack, clip: Path) -> None:
    uploaded = json.loads(artdag(stack, "upload", str(clip), "--json").stdout)
    local = artdag(stack, "cid", str(clip)).stdout.strip()
    assert uploaded[0]["cid"] == local
    assert uploaded[0]["media_type"] == "video/mp4"
    plain = artdag(stack, "upload", str(clip)).stdout
    assert plain.startswith(local) and "video/mp4" in plain


def test_render_a_recipe_with_params_and_progress(stack: Stack, clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "small.mp4"
    done = artdag(
        stack, "render", str(example_path("resize")), "-i", f"video={clip}",
        "-p", "small.width=128", "-p", "small.height=64", "-o", str(out),
    )  # fmt: skip
    assert "steps" in done.stderr and "frames" in done.stderr and "completed" in done.stderr
    assert "ETA" in done.stderr
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (128, 64)
    assert done.stdout.startswith(str(out))


def test_render_a_stored_recipe_by_name(stack: Stack, clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "by-name.mp4"
    # `resize-demo` is an example recipe the stack registers at start-up: the name finds its newest version.
    done = artdag(stack, "render", "resize-demo", "-i", f"video={clip}", "-p", "small.width=96", "-o", str(out))
    assert "completed" in done.stderr
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.width == 96
    unknown = artdag(stack, "render", "no-such-recipe", "-i", f"video={clip}", check=False)
    assert unknown.returncode != 0 and "no recipe named 'no-such-recipe'" in unknown.stderr


def test_effect_mode_async_then_show(stack: Stack, clip: Path, tmp_path: Path) -> None:
    run_id = artdag(stack, "render", "--effect", "invert", str(clip), "-p", "intensity=1").stdout.strip()
    assert run_id.startswith("run-")
    deadline = time.monotonic() + 60
    while (state := json.loads(artdag(stack, "run", "show", run_id, "--json").stdout))["status"] != "completed":
        assert state["status"] in ("pending", "running"), state
        assert time.monotonic() < deadline
        time.sleep(0.3)
    table = artdag(stack, "run", "show", run_id).stdout
    assert "completed" in table and "EFFECT" in table and state["output_cid"] in table
    listed = json.loads(artdag(stack, "runs", "--json", "--limit", "50").stdout)
    assert run_id in [r["run_id"] for r in listed["runs"]]
    assert run_id in artdag(stack, "runs").stdout
    out = tmp_path / "inverted.mp4"
    artdag(stack, "render", "--effect", "invert", str(clip), "-p", "intensity=1", "--sync", "-o", str(out))
    assert out.stat().st_size > 0


def test_recipes_and_plan(stack: Stack, clip: Path) -> None:
    recipes = json.loads(artdag(stack, "recipes", "--json").stdout)
    assert "beat-sync" in [r["name"] for r in recipes["recipes"]]
    assert "beat-sync" in artdag(stack, "recipes").stdout
    table = artdag(stack, "plan", str(example_path("resize")), "-i", f"video={clip}", "--dry-run").stdout
    assert "RESIZE" in table and "to run" in table


def test_errors_go_to_stderr_with_a_nonzero_exit(stack: Stack, tmp_path: Path) -> None:
    bad = artdag(stack, "run", "show", "run-not-a-run", check=False)
    assert bad.returncode != 0 and bad.stdout == "" and "run id" in bad.stderr
    missing = artdag(stack, "render", str(tmp_path / "nope.yaml"), check=False)
    assert missing.returncode != 0 and "no such recipe file" in missing.stderr
    down = subprocess.run(
        [str(CLI), "runs", "--server", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=30,
    )
    assert down.returncode != 0 and "cannot reach the server" in down.stderr
    param = artdag(stack, "render", str(example_path("resize")), "-p", "nosuch.width=3", check=False)
    assert param.returncode != 0 and "no step 'nosuch'" in param.stderr


def test_the_downloadable_client_runs(stack: Stack, tmp_path: Path) -> None:
    page = httpx.get(f"{stack.url}/download/client", headers={"Accept": "text/html"}).text
    name = page.split('href="/download/client/', 1)[1].split('"', 1)[0]
    wheel = tmp_path / name
    wheel.write_bytes(httpx.get(f"{stack.url}/download/client/{name}").content)
    # pip accepts it (metadata, RECORD, entry point); its `artdag` script runs the wheel's code, not this checkout's.
    target = tmp_path / "site"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(target), str(wheel)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert pip.returncode == 0, pip.stderr
    assert (target / "artdag_cli" / "main.py").is_file() and not (target / "artdag_cli" / "launcher.py").exists()
    # No ARTDAG_HOME: the wheel's client sends the token from ARTDAG_TOKEN (artdag_common.tokens, packaged).
    env = clean_env(PYTHONPATH=str(target), PYTHONSAFEPATH="1", HOME=str(tmp_path))
    where = subprocess.run(
        [sys.executable, "-c", "import artdag_cli.main as m; print(m.__file__)"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert where.stdout.strip().startswith(str(target)), where
    script = target / "bin" / "artdag"
    done = subprocess.run(
        [sys.executable, str(script), "recipes", "--json", "--server", stack.url],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert done.returncode != 0 and "no valid token" in done.stderr  # without one, the server refuses
    done = subprocess.run(
        [sys.executable, str(script), "recipes", "--json", "--server", stack.url],
        capture_output=True, text=True, timeout=60, env={**env, "ARTDAG_TOKEN": stack.token},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "beat-sync" in done.stdout
