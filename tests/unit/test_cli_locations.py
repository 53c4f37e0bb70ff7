"""`artdag locations` and `artdag copy` against a stand-in gateway (httpx's MockTransport)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from artdag_cli import main as cli
from artdag_cli.client import Client

CLI = Path(sys.executable).parent / "artdag"
CID = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
STUDIO, BACKUP = "a" * 32, "b" * 32


def answer(local: bool, *copies: tuple[str, str, str, str | None]) -> dict[str, Any]:
    return {
        "v": 1,
        "cid": CID,
        "local": local,
        "locations": [
            {
                "provider_id": pid,
                "provider_name": name,
                "type": "local",
                "state": state,
                "error": error,
                "attempts": 1,
                "updated_at": 1_700_000_000.0,
            }
            for pid, name, state, error in copies
        ],
    }


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> list[httpx.Request]:
    """The requests the CLI sends; the gateway knows CID at two providers, and the providers STUDIO and BACKUP."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        assert request.headers["authorization"] == "Bearer t0ken"
        if request.url.path == f"/cache/{CID}/locations" and request.method == "GET":
            body = answer(False, (STUDIO, "studio", "stored", None), (BACKUP, "backup", "failed", "disk full"))
            return httpx.Response(200, json=body)
        if request.url.path == f"/cache/{CID}/locations" and request.method == "POST":
            wanted = json.loads(request.content).get("provider_id", BACKUP)
            if wanted not in (STUDIO, BACKUP):
                return httpx.Response(404, json={"detail": f"no storage provider {wanted}"})
            return httpx.Response(202, json=answer(True, (wanted, "studio", "pending", None)))
        if request.url.path == "/storage":
            providers = [{"id": STUDIO, "name": "studio"}, {"id": BACKUP, "name": "backup"}]
            return httpx.Response(200, json={"v": 1, "providers": providers})
        return httpx.Response(404, json={"detail": "no such route"})

    def client(server: str) -> Client:
        made = Client(server, token="t0ken")
        made.http = httpx.Client(base_url=server, headers=made.http.headers, transport=httpx.MockTransport(handle))
        return made

    monkeypatch.setattr(cli, "Client", client)
    return seen


Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    def run(*args: str) -> tuple[int, str, str]:
        code = cli.main([*args, "--server", "http://gw"])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_locations_prints_the_local_store_and_a_row_per_provider(server: list[httpx.Request], run: Run) -> None:
    code, out, _ = run("locations", CID)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"cid      {CID}"
    assert lines[1] == "local    no (only at the providers below)"
    assert lines[3].split() == ["PROVIDER", "TYPE", "STATE", "UPDATED", "ERROR"]
    assert lines[4].split()[:3] == ["studio", "local", "stored"] and lines[4].endswith("  -")
    assert lines[5].split()[:3] == ["backup", "local", "failed"] and lines[5].endswith("disk full")
    code, out, _ = run("locations", CID, "--json")
    assert code == 0 and json.loads(out)["locations"][1]["error"] == "disk full"


def test_copy_to_a_provider_by_id_by_name_or_the_default(server: list[httpx.Request], run: Run) -> None:
    code, out, err = run("copy", CID, "--provider", STUDIO)
    assert code == 0 and "studio" in out and "pending" in out and f"artdag locations {CID}" in err
    assert json.loads(server[-1].content) == {"provider_id": STUDIO}
    code, out, _ = run("copy", CID, "--provider", "backup", "--json")
    assert code == 0 and json.loads(out)["locations"][0]["provider_id"] == BACKUP
    assert [r.url.path for r in server[-2:]] == ["/storage", f"/cache/{CID}/locations"]
    code, out, _ = run("copy", CID)
    assert code == 0 and json.loads(server[-1].content) == {}, "no --provider: the server picks the default"


def test_copy_errors_name_what_is_wrong(server: list[httpx.Request], run: Run) -> None:
    code, _, err = run("copy", CID, "--provider", "nowhere")
    assert code == 1 and "no provider with the id or name 'nowhere'; yours: backup, studio" in err
    code, _, err = run("copy", CID, "--provider", "c" * 32)
    assert code == 1 and "HTTP 404: no storage provider" in err


@pytest.mark.parametrize("command", ["locations", "copy"])
def test_a_cid_argument_that_is_not_a_cid_is_refused_before_asking(command: str) -> None:
    done = subprocess.run(
        [str(CLI), command, "QmNotACid", "--server", "http://127.0.0.1:9"], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "argument cid: 'QmNotACid' is not a CID" in done.stderr
    assert "cannot reach" not in done.stderr
