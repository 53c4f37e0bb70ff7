"""The web UI's storage forms and copy action against the real cache service (in process, over a real
nats-server): the replication policy round-trips through the add and edit forms, a provider is deleted
keeping or removing its copies, and a session's plain form copies content to a provider."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from artdag_common.nats_server import EmbeddedNatsServer
from tests.integration.gateway_harness import Harness, gateway_harness

HTMX = {"HX-Request": "true"}


@pytest.fixture
async def harness(nats: EmbeddedNatsServer, tmp_path: Path) -> AsyncIterator[Harness]:
    roots = tmp_path / "roots"
    roots.mkdir()
    async with gateway_harness(nats, tmp_path, provider_local_roots=str(roots)) as running:
        yield running


async def _provider(client: httpx.AsyncClient, name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(p for p in (await client.get("/storage")).json()["providers"] if p["name"] == name)
    return found


async def test_the_policy_round_trips_through_the_add_and_edit_forms(harness: Harness) -> None:
    alice = harness.client
    form = {"name": "studio", "type": "s3", "config.bucket": "studio", "replicate": "outputs", "default": "on"}
    added = await alice.post("/ui/storage", data=form)
    assert added.status_code == 200, added.text
    assert '<td class="replicate">outputs</td>' in added.text and '<td class="default">yes</td>' in added.text
    studio = await _provider(alice, "studio")
    assert (studio["replicate"], studio["default"], studio["config"]["bucket"]) == ("outputs", True, "studio")
    assert not {"replicate", "default"} & set(studio["config"]), "the policy is no config"
    config = studio["config"]

    # The edit form: the hidden "off" alone (the box unticked) clears the flag; the config stays.
    edited = await alice.patch(
        f"/ui/storage/{studio['id']}", data={"name": "studio", "replicate": "all", "default": "off"}
    )
    assert edited.status_code == 200 and "Saved studio." in edited.text
    studio = await _provider(alice, "studio")
    assert (studio["replicate"], studio["default"], studio["config"]) == ("all", False, config)
    renamed = await alice.patch(f"/ui/storage/{studio['id']}", data={"name": "studio-2"})
    assert renamed.status_code == 200
    assert (await _provider(alice, "studio-2"))["replicate"] == "all", "a form without the fields changes nothing"

    refused = await alice.post("/ui/storage", data={**form, "name": "odd", "replicate": "sometimes"})
    assert refused.status_code == 422 and "replicate" in refused.text
    assert [p["name"] for p in (await alice.get("/storage")).json()["providers"]] == ["studio-2"]


async def test_deleting_a_provider_keeps_its_copies_unless_asked(harness: Harness, tmp_path: Path) -> None:
    root = harness.as_user("root")
    cid = (await root.post("/cache/upload", files={"file": ("kept.bin", b"kept at two providers")})).json()["cid"]
    directories = {name: tmp_path / "roots" / name for name in ("keep", "drop")}
    ids = {}
    for name, directory in directories.items():
        directory.mkdir()
        body = {"name": name, "type": "local", "config": {"path": str(directory)}}
        added = await root.post("/storage/add", json=body)
        assert added.status_code == 201, added.text
        ids[name] = added.json()["id"]
        copied = await root.post(f"/cache/{cid}/locations", json={"provider_id": ids[name]})
        assert copied.status_code == 202, copied.text
    for name in ids:
        await _wait_stored(root, cid, ids[name])

    dropped = await root.delete(f"/ui/storage/{ids['drop']}", params={"keep_copies": "false"})
    assert dropped.status_code == 200 and "Deleted drop: its copies are being removed." in dropped.text
    kept = await root.delete(f"/ui/storage/{ids['keep']}")
    assert kept.status_code == 200 and "Deleted keep: its copies stay at the provider." in kept.text
    assert [p for p in directories["drop"].rglob("*") if p.is_file()] == []
    assert [p.read_bytes() for p in directories["keep"].rglob("*") if p.is_file()] == [b"kept at two providers"]


async def _wait_stored(client: httpx.AsyncClient, cid: str, provider_id: str) -> None:
    async with asyncio.timeout(30):
        while True:
            found = (await client.get(f"/cache/{cid}/locations")).json()
            states = {loc["provider_id"]: loc["state"] for loc in found["locations"]}
            if states.get(provider_id) == "stored":
                return
            assert states.get(provider_id) in (None, "pending"), found
            await asyncio.sleep(0.1)


async def test_a_session_form_copies_and_htmx_gets_the_section(harness: Harness, tmp_path: Path) -> None:
    root = harness.as_user("root")
    cid = (await root.post("/cache/upload", files={"file": ("c.bin", b"copied from a form")})).json()["cid"]
    (tmp_path / "roots" / "one").mkdir()
    body = {"name": "one", "type": "local", "config": {"path": str(tmp_path / "roots" / "one")}}
    provider_id = (await root.post("/storage/add", json=body)).json()["id"]

    browser = httpx.AsyncClient(transport=httpx.ASGITransport(app=harness.app), base_url="http://gateway")
    harness.extra.append(browser)
    login = await browser.get("/auth", params={"auth_token": harness.tokens["root"], "next": "/"})
    assert login.status_code == 303
    csrf = browser.cookies["artdag_csrf"]
    refused = await browser.post(f"/ui/media/{cid}/copy", data={"provider_id": provider_id})
    assert refused.status_code == 403, "a session form needs its CSRF token"
    sent = await browser.post(f"/ui/media/{cid}/copy", data={"provider_id": provider_id, "csrf_token": csrf})
    assert sent.status_code == 303 and sent.headers["location"] == f"/cache/{cid}"
    await _wait_stored(root, cid, provider_id)

    again = await browser.post(
        f"/ui/media/{cid}/copy", data={"provider_id": provider_id}, headers={**HTMX, "X-CSRF-Token": csrf}
    )
    assert again.status_code == 202, again.text
    assert re.search(rf'<tr data-provider-id="{provider_id}" data-state="(stored|pending)">', again.text)
    assert "Copying to one" in again.text and f'name="csrf_token" value="{csrf}"' in again.text

    # Another user's content is "not found", and shows nothing of it.
    bob = harness.as_user("bob")
    other = await bob.post(f"/ui/media/{cid}/copy", data={"provider_id": provider_id}, headers=HTMX)
    assert other.status_code == 404 and "Stored at" not in other.text
