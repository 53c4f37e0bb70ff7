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
