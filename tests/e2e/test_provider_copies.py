"""Storage providers hold content: a user's uploads and renders are copied to their providers (moto's
real S3 server, a local directory), verified, survive a cache service killed mid-copy, are read
back after the local store gave them up, and are deleted with the content."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from artdag_cli.demo_media import write_test_clip
from artdag_common.cid import cid_of_bytes, cid_of_file
from artdag_common.examples import example_path
from artdag_dev.testing import moto_s3_server
from tests.e2e.conftest import Stack, running_stack
from tests.e2e.test_planner_api import wait_for
from tests.e2e.test_remote_stores import moto_client
from tests.pinning_service import running_pinning_service

pytestmark = pytest.mark.e2e

BUCKET = "copies"


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    with moto_s3_server(tmp_path / "moto.log") as endpoint:
        client = moto_client(endpoint)
        client.create_bucket(Bucket=BUCKET)
        yield endpoint, client


def _objects(client: Any) -> dict[str, bytes]:
    """Every object in the bucket by key."""
    listed = client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return {o["Key"]: client.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in listed}


def _wait_state(http: httpx.Client, cid: str, provider_id: str, state: str, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        meta = http.get(f"/cache/{cid}/meta")
        assert meta.status_code in (200, 503), meta.text  # 503: the cache service is restarting
        if meta.status_code == 503:
            assert time.monotonic() < deadline, meta.text
            time.sleep(0.2)
            continue
        found = {loc["provider_id"]: loc for loc in meta.json()["locations"]}
        if provider_id in found and found[provider_id]["state"] == state:
            location: dict[str, Any] = found[provider_id]
            return location
        assert time.monotonic() < deadline, f"{cid} never reached {state}: {meta.json()}"
        time.sleep(0.1)


def _add_s3(http: httpx.Client, endpoint: str, replicate: str, prefix: str = "artdag/", **extra: Any) -> str:
    config = {
        "bucket": BUCKET,
        "prefix": prefix,
        "endpoint_url": endpoint,
        "region": "us-east-1",
        "access_key_id": "test",
        "secret_access_key": "test-secret",
    }
    body = {"name": "my bucket", "type": "s3", "config": config, "replicate": replicate, **extra}
    added = http.post("/storage/add", json=body)
    assert added.status_code == 201, added.text
    assert added.json()["replicate"] == replicate
    provider_id: str = added.json()["id"]
    return provider_id


def _cache_pid(stack: Stack) -> int:
    for pid in stack.descendants():
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"services.cache" in command:
            return pid
    raise AssertionError("no cache service process")


def test_uploads_and_renders_are_copied_verified_read_back_and_deleted(tmp_path: Path, s3: tuple[str, Any]) -> None:
    endpoint, client = s3
    clip = tmp_path / "clip.mp4"
    write_test_clip(clip, width=320, height=180, fps=25, duration_s=1.0)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(24 * 1024 * 1024))  # a copy that takes long enough to be killed in
    with running_stack(
        tmp_path / "home",
        # moto listens on 127.0.0.1: a plain user may point a provider there only when the operator allows it.
        ARTDAG_PROVIDER_ALLOW_PRIVATE="true",
        ARTDAG_ACK_WAIT_S="4",
        ARTDAG_HEARTBEAT_S="1",
        ARTDAG_CACHE_EVICT_MIN_AGE_S="0",
    ) as stack:
        bob = {"Authorization": f"Bearer {stack.token_for('bob')}"}
        with httpx.Client(base_url=stack.url, timeout=60, headers=bob) as http:
            s3_id = _add_s3(http, endpoint, "all", default=True)

            # An upload is copied, and the copy in the bucket hashes to the CID.
            with clip.open("rb") as handle:
                cid = http.post("/cache/upload", files={"file": ("clip.mp4", handle)}).json()["cid"]
            assert cid == cid_of_file(clip)
            stored = _wait_state(http, cid, s3_id, "stored")
            assert stored["error"] is None and stored["type"] == "s3"
            assert [k for k, body in _objects(client).items() if cid_of_bytes(body) == cid], "no verified copy"

            # A render's output and its provenance record are copied too.
            run_id = http.post(
                "/runs", json={"recipe": example_path("resize").read_text(), "inputs": {"video": cid}}
            ).json()["run_id"]
            run = wait_for(http, run_id, timeout_s=120)
            assert run["status"] == "completed", run
            output = run["output_cid"]
            _wait_state(http, output, s3_id, "stored")
            provenance = http.get(f"/cache/{output}/meta").json()["provenance_cid"]
            _wait_state(http, provenance, s3_id, "stored")
            held = {cid_of_bytes(body) for body in _objects(client).values()}
            assert {cid, output, provenance} <= held

            # The cache service killed mid-copy: the work queue gives the copy to it again once restarted.
            with big.open("rb") as handle:
                big_cid = http.post("/cache/upload", files={"file": ("big.bin", handle)}).json()["cid"]
            deadline = time.monotonic() + 30
            while True:
                location = {
                    loc["provider_id"]: loc for loc in http.get(f"/cache/{big_cid}/locations").json()["locations"]
                }.get(s3_id)
                if location and location["state"] == "pending" and location["attempts"] >= 1:
                    break
                assert time.monotonic() < deadline and (location is None or location["state"] == "pending"), location
                time.sleep(0.02)
            os.kill(_cache_pid(stack), signal.SIGKILL)
            done = _wait_state(http, big_cid, s3_id, "stored", timeout_s=90)
            assert done["attempts"] >= 2, done
            assert big_cid in {cid_of_bytes(body) for body in _objects(client).values()}

            # Copy to a provider made after the content (another prefix of the bucket), by request.
            later = _add_s3(http, endpoint, "none", prefix="later/")
            refused = http.post(f"/cache/{cid}/locations", json={"provider_id": "f" * 32})
            assert refused.status_code == 404, refused.text
            accepted = http.post(f"/cache/{cid}/locations", json={"provider_id": later})
            assert accepted.status_code == 202, accepted.text
            _wait_state(http, cid, later, "stored")
            assert [k for k, body in _objects(client).items() if k.startswith("later/") and cid_of_bytes(body) == cid]

        # Deleting the content deletes its copies.
        with httpx.Client(base_url=stack.url, timeout=60, headers=bob) as http:
            assert http.delete(f"/cache/{big_cid}").status_code == 200
            deadline = time.monotonic() + 30
            while big_cid in {cid_of_bytes(body) for body in _objects(client).values()}:
                assert time.monotonic() < deadline, "the copy outlived its content"
                time.sleep(0.2)
            assert http.get(f"/cache/{big_cid}/meta").status_code == 404

            # Deleting a provider keeps its copies unless asked otherwise.
            before = set(_objects(client))
            assert http.delete(f"/storage/{later}").status_code == 200
            assert set(_objects(client)) == before
            assert [loc["provider_id"] for loc in http.get(f"/cache/{cid}/meta").json()["locations"]] == [s3_id]
            gone = http.delete(f"/storage/{s3_id}", params={"keep_copies": "false"})
            assert gone.status_code == 200, gone.text
            left = set(_objects(client))
            assert not [k for k in left if k.startswith("artdag/")], left
            assert [k for k in left if k.startswith("later/")], "another provider's copies are not this one's to delete"
            assert http.get(f"/cache/{cid}/meta").json()["locations"] == []


def test_a_pinning_service_pins_uploads_and_unpins_deleted_content(tmp_path: Path, ipfs_api: str) -> None:
    with (
        running_pinning_service(ipfs_api) as service,
        running_stack(tmp_path / "home", ARTDAG_PROVIDER_ALLOW_PRIVATE="true") as stack,
    ):
        bob = {"Authorization": f"Bearer {stack.token_for('bob')}"}
        with httpx.Client(base_url=stack.url, timeout=60, headers=bob) as http:
            config = {"endpoint": service.url, "access_token": service.token, "ipfs_api": ipfs_api}
            added = http.post(
                "/storage/add", json={"name": "pins", "type": "pinning", "config": config, "replicate": "inputs"}
            )
            assert added.status_code == 201, added.text
            assert added.json()["config"]["access_token"] == "********"
            assert http.post(f"/storage/{added.json()['id']}/test").json()["ok"] is True
            body = os.urandom(200_000)
            cid = http.post("/cache/upload", files={"file": ("notes.bin", body)}).json()["cid"]
            _wait_state(http, cid, added.json()["id"], "stored")
            assert [pin["pin"]["cid"] for pin in service.pins(("pinned",))] == [cid]

            assert http.delete(f"/cache/{cid}").status_code == 200
            deadline = time.monotonic() + 30
            while service.pins():
                assert time.monotonic() < deadline, service.pins()
                time.sleep(0.2)
        assert service.token not in stack.log.read_text()


def _give_up(http: httpx.Client, cid: str) -> None:
    """Upload until the store, over its limit, gives `cid` up (the least recently used copied content)."""
    deadline = time.monotonic() + 40
    while http.get(f"/cache/{cid}/locations").json()["local"]:
        assert time.monotonic() < deadline, "the store never gave the clip up"
        http.post("/cache/upload", files={"file": ("nudge.bin", os.urandom(64 * 1024))})
        time.sleep(0.2)


def test_content_given_up_locally_is_read_back_from_the_provider(tmp_path: Path, s3: tuple[str, Any]) -> None:
    endpoint, _ = s3
    clip = tmp_path / "clip.mp4"
    write_test_clip(clip, width=320, height=180, fps=25, duration_s=1.0)
    stack_env = {
        "ARTDAG_PROVIDER_ALLOW_PRIVATE": "true",
        # Content read in the last 5 s stays: what a download or a run just had read back is not given up under it.
        "ARTDAG_CACHE_EVICT_MIN_AGE_S": "5",
        # Room for a little more than the clip: later uploads make the store give the clip up.
        "ARTDAG_CACHE_MAX_BYTES": str(int(clip.stat().st_size * 1.5)),
    }
    with (
        running_stack(tmp_path / "home", log=None, **stack_env) as stack,
        httpx.Client(base_url=stack.url, timeout=60, headers=stack.headers) as http,
    ):
        s3_id = _add_s3(http, endpoint, "inputs")
        with clip.open("rb") as handle:
            cid = http.post("/cache/upload", files={"file": ("clip.mp4", handle)}).json()["cid"]
        _wait_state(http, cid, s3_id, "stored")
        _give_up(http, cid)
        meta = http.get(f"/cache/{cid}/meta").json()
        assert meta["local"] is False and meta["locations"][0]["state"] == "stored"

        # A download reads it back from the bucket, verified.
        raw = http.get(f"/cache/{cid}/raw")
        assert raw.status_code == 200 and cid_of_bytes(raw.content) == cid
        assert http.get(f"/cache/{cid}/locations").json()["local"] is True

        # Given up again, a run needs it: the executor has it read back too.
        _give_up(http, cid)
        run_id = http.post(
            "/runs", json={"recipe": example_path("resize").read_text(), "inputs": {"video": cid}}
        ).json()["run_id"]
        run = wait_for(http, run_id, timeout_s=120)
        assert run["status"] == "completed", (run.get("error"), stack.log.read_text()[-4000:])
