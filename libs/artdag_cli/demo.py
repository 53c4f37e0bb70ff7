"""The demo that `make run` shows: generated media, an example recipe, one run."""

from __future__ import annotations

import sys
from pathlib import Path

from artdag_cli.client import ApiError, Client
from artdag_cli.demo_media import write_test_clip
from artdag_common.examples import example_path

EXAMPLE_RECIPE = example_path("resize")


def prepare_demo(directory: Path) -> tuple[Path, Path]:
    """Write the demo clip and recipe into `directory` (once); return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    clip = directory / "demo-clip.mp4"
    if not clip.exists():
        tmp = directory / "demo-clip.part.mp4"
        write_test_clip(tmp, width=640, height=360, fps=25, duration_s=3.0, tone_hz=440.0)
        tmp.replace(clip)
    recipe = directory / "resize.yaml"
    recipe.write_text(EXAMPLE_RECIPE.read_text())
    return clip, recipe


def run_demo(server: str, directory: Path, token: str | None = None) -> None:
    """Upload the demo clip, run the example recipe on it (as `token`'s user), and say where the output is."""
    clip, recipe = prepare_demo(directory)
    client = Client(server, token=token)
    try:
        cid = client.upload(clip)
        run_id = client.submit(recipe.read_text(), {"video": cid})
        print(f"artdag: demo run {run_id} submitted ({clip.name} → {recipe.name})", file=sys.stderr, flush=True)
        state = client.wait(run_id, timeout_s=120)
        if state["status"] == "completed":
            print(f"artdag: demo run completed: {server}/cache/{state['output_cid']}/raw", file=sys.stderr, flush=True)
        else:
            print(f"artdag: demo run failed: {state.get('error')}", file=sys.stderr, flush=True)
    except ApiError as exc:
        print(f"artdag: demo failed: {exc}", file=sys.stderr, flush=True)
    finally:
        client.close()
