import subprocess
import sys
from pathlib import Path

import pytest

from artdag_cli.main import main

CLI = Path(sys.executable).parent / "artdag"


def test_cid_agrees_with_kubo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "hello.txt"
    path.write_bytes(b"hello world\n")
    assert main(["cid", str(path)]) == 0
    assert capsys.readouterr().out.strip() == "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
    assert main(["cid", str(path), "--cid-version", "1"]) == 0
    assert capsys.readouterr().out.strip() == "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"


def test_bad_arguments_exit_non_zero_with_a_message(tmp_path: Path) -> None:
    missing = subprocess.run([str(CLI), "cid", str(tmp_path / "nope")], capture_output=True, text=True)
    assert missing.returncode == 1
    assert "no such file" in missing.stderr
    bad_version = subprocess.run([str(CLI), "cid", "x", "--cid-version", "7"], capture_output=True, text=True)
    assert bad_version.returncode == 2
    assert "invalid choice" in bad_version.stderr
    bad_port = subprocess.run([str(CLI), "up", "--port", "99999"], capture_output=True, text=True)
    assert bad_port.returncode == 2
    assert "port must be 1-65535" in bad_port.stderr
    bad_binding = subprocess.run([str(CLI), "render", "r.yaml", "-i", "video"], capture_output=True, text=True)
    assert bad_binding.returncode == 2
    assert "NAME=PATH" in bad_binding.stderr


def test_params_set_step_config_and_effect_mode_builds_a_recipe() -> None:
    import yaml

    from artdag_cli.main import apply_params, effect_recipe
    from artdag_common.errors import ArtdagError
    from artdag_common.examples import example_path
    from artdag_common.recipe import parse_recipe

    text = apply_params(example_path("resize").read_text(), [("small.width", "160"), ("small.mode", "pad")])
    step = parse_recipe(text).steps[0]
    assert step.config["width"] == 160 and step.config["mode"] == "pad"
    with pytest.raises(ArtdagError, match="no step 'nope'"):
        apply_params(example_path("resize").read_text(), [("nope.width", "1")])
    with pytest.raises(ArtdagError, match=r"STEP\.KEY"):
        apply_params(example_path("resize").read_text(), [("width", "1")])
    # A value YAML cannot make into a number stays text (the recipe check then names it).
    odd = apply_params(example_path("resize").read_text(), [("small.mode", "2026-13-45")])
    assert yaml.safe_load(odd)["steps"][0]["config"]["mode"] == "2026-13-45"
    with pytest.raises(ArtdagError, match="cannot read"):
        apply_params("steps: [{id: a, config: {n: !!int abc}}]\n", [("a.n", "1")])
    recipe = parse_recipe(effect_recipe("pixelate", [("block_size", "8")]))
    assert recipe.steps[0].type == "EFFECT" and recipe.steps[0].config["params"] == {"block_size": 8}
    assert yaml.safe_load(effect_recipe("invert", []))["output"] == "invert"


def test_progress_line_counts_steps_frames_and_eta() -> None:
    import io

    from artdag_cli.progress import Progress

    progress = Progress({"a": 100, "b": 300}, stream=io.StringIO())
    state = {
        "status": "running",
        "steps": {
            "src": {"name": "input:video", "status": "completed"},
            "a": {"name": "small", "status": "completed"},
            "b": {"name": "big", "status": "running"},
        },
    }
    line = progress.line(state, now=progress.started + 10.0)
    assert "2/3 steps" in line and "100/400 frames" in line and "running: big" in line and "25%" in line
    assert "ETA 30s" in line  # 10 s for a quarter of the frames
    done = progress.line({**state, "status": "completed"}, now=progress.started + 12.0)
    assert "100%" in done and "ETA 0s" in done


def test_bus_config_prints_the_logins_of_the_home_and_a_secret_for_kubernetes(tmp_path: Path) -> None:
    import base64
    import json

    from artdag_common.bus_access import USERS, BusCredentials

    cli = Path(sys.executable).parent / "artdag"
    conf = subprocess.run([str(cli), "bus-config", "--home", str(tmp_path)], capture_output=True, text=True, check=True)
    credentials = BusCredentials.load(tmp_path)
    assert credentials is not None
    assert credentials.login("executor").password in conf.stdout
    secret = subprocess.run(
        [str(cli), "bus-config", "--home", str(tmp_path), "--secret", "artdag-bus"],
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(secret.stdout)["data"]
    assert set(data) == set(USERS)
    assert base64.b64decode(data["admin"]).decode() == credentials.admin.password
    bad = subprocess.run(
        [str(cli), "bus-config", "--home", str(tmp_path), "--secret", "Bad Name"], capture_output=True, text=True
    )
    assert bad.returncode == 1 and "--secret" in bad.stderr


def test_analyze_sends_its_window_and_tempo_options_as_params() -> None:
    from artdag_cli.main import analysis_params, build_parser

    parser = build_parser()
    assert analysis_params(parser.parse_args(["analyze", "x.wav"])) == {}
    hinted = parser.parse_args(["analyze", "x.wav", "--tempo-hint", "70", "--tempo-min", "50", "--window-ms", "20"])
    assert analysis_params(hinted) == {"window_ms": 20.0, "tempo_min": 50.0, "tempo_hint": 70.0}
    assert analysis_params(parser.parse_args(["analyze", "x.wav", "--tempo-max", "180"])) == {"tempo_max": 180.0}
