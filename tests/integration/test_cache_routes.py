"""The content, IPFS and storage routes: the gateway app and the cache service over a real nats-server."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from nats.aio.client import Client as NatsClient

from artdag_common.cid import cid_of_bytes
from artdag_common.completion import finished_message
from artdag_common.content_store import LocalContentStore
from artdag_common.ids import canonical_json
from artdag_common.keys import verify_record
from artdag_common.nats_server import EmbeddedNatsServer, free_port
from artdag_common.schemas import (
    Plan,
    PlanStep,
    RunState,
    RunStatus,
    StepState,
    StepStatus,
)
from tests.integration.gateway_harness import Harness, gateway_harness

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
async def harness(nats: EmbeddedNatsServer, tmp_path: Path) -> AsyncIterator[Harness]:
    async with gateway_harness(nats, tmp_path) as running:
        yield running


async def upload(client: httpx.AsyncClient, data: bytes, name: str = "a.bin") -> dict[str, Any]:
    response = await client.post("/cache/upload", files={"file": (name, data, "application/octet-stream")})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_content_json_html_meta_patch_and_media(harness: Harness) -> None:
    client = harness.client
    image = await upload(client, PNG, "dot.png")
    other = await upload(client, b"just bytes", "notes.bin")

    as_json = await client.get(f"/cache/{image['cid']}")
    assert as_json.status_code == 200 and as_json.json()["media_type"] == "image/png"
    page = await client.get(f"/cache/{image['cid']}", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert f'<img alt="dot.png" src="/cache/{image["cid"]}/raw">' in page.text
    assert "cdn" not in page.text.lower() and "default-src 'none'" in page.headers["content-security-policy"]

    patched = await client.patch(
        f"/cache/{image['cid']}/meta",
        json={"name": "<b>dot</b>", "description": "a tiny image", "tags": ["test", "png"]},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["tags"] == ["test", "png"]
    meta = (await client.get(f"/cache/{image['cid']}/meta")).json()
    assert (meta["name"], meta["description"], meta["pinned"]) == ("<b>dot</b>", "a tiny image", False)
    page = await client.get(f"/cache/{image['cid']}", headers={"Accept": "text/html"})
    assert "&lt;b&gt;dot&lt;/b&gt;" in page.text and "<b>dot</b>" not in page.text

    images = (await client.get("/media", params={"type": "image"})).json()
    assert [i["cid"] for i in images["items"]] == [image["cid"]] and images["total"] == 1
    everything = (await client.get("/media", params={"limit": 1})).json()
    assert everything["total"] == 2 and everything["items"][0]["cid"] == other["cid"]  # newest first

    bad = [
        (await client.patch(f"/cache/{image['cid']}/meta", json={"tags": ["bad/tag"]}), 422),
        (await client.patch(f"/cache/{image['cid']}/meta", json={"name": "x" * 600}), 422),
        (await client.patch(f"/cache/{image['cid']}/meta", json={"size": 1}), 422),
        (await client.get("/media", params={"type": "VIDEO;drop"}), 422),
        (await client.get("/cache/not-a-cid"), 400),
        (await client.get(f"/cache/{cid_of_bytes(b'never stored')}"), 404),
        (await client.patch(f"/cache/{cid_of_bytes(b'never stored')}/meta", json={"name": "x"}), 404),
    ]
    assert [r.status_code for r, _ in bad] == [s for _, s in bad], [r.text for r, _ in bad]


async def test_delete_refusals_and_deletion(harness: Harness) -> None:
    client = harness.client
    kept = await upload(client, b"pinned bytes")
    gone = await upload(client, b"orphan bytes")
    assert (await client.patch(f"/cache/{kept['cid']}/meta", json={"pinned": True})).status_code == 200
    refused = await client.delete(f"/cache/{kept['cid']}")
    assert refused.status_code == 409 and "pinned" in refused.json()["detail"]
    assert refused.json()["error"]["code"] == "conflict"

    deleted = await client.delete(f"/cache/{gone['cid']}")
    assert deleted.status_code == 200 and deleted.json()["blob_deleted"] is True
    assert (await client.get(f"/cache/{gone['cid']}/raw")).status_code == 404
    assert (await client.delete(f"/cache/{gone['cid']}")).status_code == 404
    assert (await client.get(f"/cache/{kept['cid']}/raw")).content == b"pinned bytes"


async def test_import_only_from_import_dirs(harness: Harness, tmp_path: Path) -> None:
    client, imports = harness.client, harness.imports
    (imports / "sub").mkdir()
    (imports / "sub" / "dot.png").write_bytes(PNG)
    outside = tmp_path / "secret.txt"
    outside.write_text("not for you")
    (imports / "escape").symlink_to(outside)
    (imports / "inner").symlink_to(imports / "sub" / "dot.png")
    os.mkfifo(imports / "pipe")

    done = await client.post("/cache/import", params={"path": str(imports / "sub" / "dot.png")})
    assert done.status_code == 201, done.text
    body = done.json()
    assert (body["origin"], body["media_type"], body["name"], body["size"]) == ("import", "image/png", "dot.png", 72)
    assert (await client.get(f"/cache/{body['cid']}/raw")).content == PNG
    via_link = await client.post("/cache/import", params={"path": str(imports / "inner")})
    assert via_link.status_code == 201 and via_link.json()["cid"] == body["cid"]

    cases = {
        str(outside): 403,
        str(imports / "escape"): 403,
        str(imports / "sub" / ".." / ".." / outside.name): 403,
        "/etc/passwd": 403,
        str(imports / "sub"): 400,
        str(imports / "pipe"): 400,
        "/dev/null": 403,
        "relative/path.png": 400,
        str(imports / "missing.png"): 404,
    }
    got = {}
    for path, _ in cases.items():
        got[path] = (await client.post("/cache/import", params={"path": path})).status_code
    assert got == cases


async def test_import_refuses_devices_inside_an_import_dir(nats: EmbeddedNatsServer, tmp_path: Path) -> None:
    from services.gateway.files import open_importable

    with pytest.raises(Exception, match="a device") as info:
        open_importable("/dev/null", [Path("/dev")])
    assert getattr(info.value, "code", None) == "bad_request"
    with pytest.raises(Exception, match="importing is off"):
        open_importable(str(tmp_path), [])


async def test_ipfs_routes(harness: Harness) -> None:
    cid = cid_of_bytes(b"hello")
    redirect = await harness.client.get(f"/ipfs/{cid}")
    assert redirect.status_code == 302 and redirect.headers["location"] == f"https://gw.example/ipfs/{cid}"
    raw = await harness.client.get(f"/ipfs/{cid}/raw")
    assert raw.status_code == 404 and "not IPFS" in raw.json()["detail"]
    assert (await harness.client.get("/ipfs/nope")).status_code == 400


async def test_ipfs_raw_reads_the_node_in_ipfs_primary_mode(
    nats: EmbeddedNatsServer, tmp_path: Path, ipfs_api: str
) -> None:
    async with gateway_harness(nats, tmp_path, ipfs_primary=True, ipfs_api=ipfs_api) as harness:
        body = os.urandom(50_000)
        cid = (await upload(harness.client, body))["cid"]
        raw = await harness.client.get(f"/ipfs/{cid}/raw")
        assert raw.status_code == 200 and raw.content == body
        # The local copy in front of the node gone: the route still answers, from the node.
        local = LocalContentStore(harness.home / "cache")
        assert await local.delete(cid)
        again = await harness.client.get(f"/ipfs/{cid}/raw")
        assert again.status_code == 200 and cid_of_bytes(again.content) == cid


async def test_storage_provider_routes(nats: EmbeddedNatsServer, tmp_path: Path) -> None:
    # Every endpoint here is on loopback, so private addresses are allowed, as for a MinIO on the LAN.
    async with gateway_harness(nats, tmp_path, provider_allow_private=True) as harness:
        await _storage_provider_routes(harness)


async def _storage_provider_routes(harness: Harness) -> None:
    client, root = harness.client, harness.as_user("root")
    disk = harness.home / "providers" / "disk"  # under the default root for local providers
    disk.mkdir(parents=True)
    schema = (await client.get("/storage/type/s3")).json()
    assert {f["name"]: f["secret"] for f in schema["fields"]}["secret_access_key"] is True
    assert (await client.get("/storage/type/floppy")).status_code == 404

    s3 = await client.post(
        "/storage/add",
        json={
            "name": "bucket",
            "type": "s3",
            "config": {
                "bucket": "art",
                "endpoint_url": f"http://127.0.0.1:{free_port()}",  # nothing listens: the test must say so
                "access_key_id": "AK",
                "secret_access_key": "very-secret",
            },
        },
    )
    assert s3.status_code == 201, s3.text
    s3_id = s3.json()["id"]
    assert s3.json()["config"]["secret_access_key"] == "********"
    form = await root.post("/storage", data={"name": "disk", "type": "local", "path": str(disk), "unused": ""})
    assert form.status_code == 201, form.text
    disk_id = form.json()["id"]
    assert [p["name"] for p in (await client.get("/storage")).json()["providers"]] == ["bucket"]
    listed = (await root.get("/storage")).json()["providers"]
    assert [p["name"] for p in listed] == ["bucket", "disk"]
    assert "very-secret" not in json.dumps(listed) and "very-secret" not in (await client.get(f"/storage/{s3_id}")).text

    test = await root.post(f"/storage/{disk_id}/test")
    assert test.status_code == 200 and test.json()["ok"] is True, test.text
    assert list(disk.rglob("*")) == [] or all(p.is_dir() for p in disk.rglob("*"))  # the object was deleted again
    failing = await client.post(f"/storage/{s3_id}/test")  # reported, not raised
    assert failing.status_code == 200 and failing.json()["ok"] is False
    assert failing.json()["error"] == "could not reach the endpoint"
    patched = await client.patch(f"/storage/{s3_id}", json={"name": "renamed", "config": {"region": "eu-west-1"}})
    assert patched.status_code == 200 and patched.json()["config"]["region"] == "eu-west-1"
    assert patched.json()["config"]["secret_access_key"] == "********"

    refusals = [
        (await client.post("/storage/add", json={"name": "x", "type": "floppy", "config": {}}), 422),
        (await client.post("/storage/add", json={"name": "x", "type": "s3", "config": {"bucket": "A!"}}), 422),
        (await client.post("/storage/add", json={"name": "x", "type": "local", "config": {"path": "rel"}}), 422),
        (await client.post("/storage", data={"type": "local", "path": str(disk)}), 422),
        (await client.post("/storage", data={"name": "mine", "type": "local", "path": str(disk)}), 403),  # admins'
        (await client.patch(f"/storage/{s3_id}", json={"config": {"bucket": "no_underscores"}}), 422),
        (await client.get("/storage/" + "0" * 32), 404),
        (await client.get("/storage/not-an-id"), 400),
        (await client.delete("/storage/" + "0" * 32), 404),
    ]
    assert [r.status_code for r, _ in refusals] == [s for _, s in refusals], [r.text for r, _ in refusals]
    assert (await root.delete(f"/storage/{disk_id}")).status_code == 200
    assert (await root.get(f"/storage/{disk_id}")).status_code == 404


async def test_run_completion_records_refs_and_provenance(harness: Harness, nc: NatsClient) -> None:
    client = harness.client
    source = await upload(client, b"input video", "in.mp4")
    middle = await upload(client, b"intermediate", "mid.mp4")
    output = await upload(client, b"final output", "out.mp4")
    run_id = "run-" + os.urandom(8).hex()
    state = RunState(
        run_id=run_id,
        status=RunStatus.COMPLETED,
        recipe_id="QmRecipe",
        recipe_name="demo",
        plan_id="p" * 64,
        inputs={"video": source["cid"]},
        output_step="b",
        steps={
            "a": StepState(name="a", node_type="EFFECT", status=StepStatus.COMPLETED, output_cid=middle["cid"]),
            "b": StepState(
                name="b", node_type="RESIZE", inputs=["a"], status=StepStatus.COMPLETED, output_cid=output["cid"]
            ),
        },
        output_cid=output["cid"],
        owner="alice",
    )
    plan = Plan(
        plan_id="p" * 64,
        recipe_id="QmRecipe",
        recipe_name="demo",
        input_cids={"video": source["cid"]},
        output_step="b",
        steps=[PlanStep(step_id="a", name="a", node_type="EFFECT", config={"effect": "invert"}, op_version="7")],
    )
    # The planner keeps the plan as content; the finished run's message names it.
    plan_record = await upload(client, canonical_json(plan.model_dump(mode="json")), "plan.json")
    state.plan_cid = plan_record["cid"]
    finished = finished_message(state)
    await nc.jetstream().publish(finished.subject, finished.data, headers=finished.headers)
    for _ in range(100):
        meta = (await client.get(f"/cache/{output['cid']}/meta")).json()
        if meta.get("provenance_cid"):
            break
        await asyncio.sleep(0.05)
    assert meta["provenance_cid"], meta

    record = (await client.get(f"/cache/{meta['provenance_cid']}/raw")).json()
    assert record["run_id"] == run_id and record["output"] == {"name": "out.mp4", "cid": output["cid"]}
    assert record["inputs"] == [{"name": "video", "cid": source["cid"]}]
    assert record["effects"] == [{"name": "invert", "version": "7"}]
    assert (record["recipe_cid"], record["rendered_by"]) == ("QmRecipe", "alice")
    assert record["plan_cid"] == plan_record["cid"]
    # Signed by this L1's Ed25519 key, the one its actor document publishes.
    actor = (await harness.anonymous.get("/actor")).json()
    trusted = actor["artdag:provenanceKey"]["publicKeyBase64"]
    assert verify_record(record, trusted) == (True, verify_record(record, trusted)[1])
    assert verify_record(record, trusted)[0] is True
    tampered = {**record, "rendered_by": "mallory"}
    assert verify_record(tampered, trusted)[0] is False
    assert (await harness.as_user("bob").get(f"/cache/{meta['provenance_cid']}/meta")).status_code == 404
    # `infra:` names and CIDs of documents that are there to read, as the seed README shows them.
    software = record["infrastructure"]["software"]
    assert software["name"] == "infra:artdag"
    described = (await client.get(f"/cache/{software['cid']}/raw")).json()
    assert described == {"type": "software", "name": "artdag", "version": "0.1.0"}
    assert record["infrastructure"]["hardware"]["name"].startswith("infra:")
    prov_meta = (await client.get(f"/cache/{meta['provenance_cid']}/meta")).json()
    assert (prov_meta["origin"], prov_meta["media_type"]) == ("provenance", "application/json")

    for cid, why in ((source["cid"], "an input of run"), (output["cid"], "the output of run")):
        refused = await client.delete(f"/cache/{cid}")
        assert refused.status_code == 409 and why in refused.json()["detail"], refused.text
    assert (await client.delete(f"/cache/{meta['provenance_cid']}")).status_code == 409
    assert (await client.delete(f"/cache/{middle['cid']}")).status_code == 200  # an intermediate may go
