"""`artdag copy` and `artdag locations` as a user runs them, against the stack: a file copied to a `local`
provider (under `<home>/providers`, where the stack lets its admin put one) shows up as stored."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Stack
from tests.e2e.test_cli import artdag

pytestmark = pytest.mark.e2e


def test_copy_a_file_to_a_provider_and_see_it_stored(stack: Stack, client: httpx.Client, tmp_path: Path) -> None:
    directory = stack.home / "providers" / "cli-copies"
    directory.mkdir(parents=True, exist_ok=True)
    body = {"name": "cli-copies", "type": "local", "config": {"path": str(directory)}}
    added = client.post("/storage/add", json=body)
    assert added.status_code == 201, added.text
    provider_id = added.json()["id"]
    try:
        upload = tmp_path / "cli-copy.bin"
        upload.write_bytes(os.urandom(16 * 1024))
        cid = json.loads(artdag(stack, "upload", str(upload), "--json").stdout)[0]["cid"]
        assert "no copies at storage providers" in artdag(stack, "locations", cid).stdout

        copied = artdag(stack, "copy", cid, "--provider", "cli-copies")
        assert "cli-copies" in copied.stdout and f"artdag locations {cid}" in copied.stderr
        deadline = time.monotonic() + 60
        while True:
            found = json.loads(artdag(stack, "locations", cid, "--json").stdout)
            states = {loc["provider_id"]: loc["state"] for loc in found["locations"]}
            if states.get(provider_id) == "stored":
                break
            assert states.get(provider_id) == "pending", found
            assert time.monotonic() < deadline, found
            time.sleep(0.2)
        table = artdag(stack, "locations", cid).stdout
        assert "local    yes" in table
        assert any(line.split()[:3] == ["cli-copies", "local", "stored"] for line in table.splitlines())

        again = artdag(stack, "copy", cid, "--provider", provider_id, "--json")
        assert json.loads(again.stdout)["cid"] == cid
        refused = artdag(stack, "copy", cid, "--provider", "nowhere", check=False)
        assert refused.returncode == 1 and "no provider with the id or name 'nowhere'" in refused.stderr
    finally:
        client.delete(f"/storage/{provider_id}", params={"keep_copies": "false"})
