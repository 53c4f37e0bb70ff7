"""The whole stack on a remote content store: JetStream object store, and S3 (moto's real server)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import av
import botocore.session
import pytest

from artdag_cli.demo_media import write_test_clip
from artdag_common.cid import cid_of_bytes, cid_of_file
from artdag_common.examples import example_path
from artdag_dev.testing import moto_s3_server
from tests.e2e.conftest import running_stack

pytestmark = pytest.mark.e2e


def moto_client(endpoint: str) -> Any:
    """A botocore S3 client for moto's server at `endpoint` (moto takes any keys; these are the tests')."""
    return botocore.session.get_session().create_client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test-secret",
    )


@contextmanager
def s3_settings(tmp_path: Path) -> Iterator[dict[str, str]]:
    with moto_s3_server(tmp_path / "moto.log") as endpoint:
        moto_client(endpoint).create_bucket(Bucket="artdag")
        yield {
            "ARTDAG_STORE": "s3",
            "ARTDAG_S3_BUCKET": "artdag",
            "ARTDAG_S3_PREFIX": "content/",
            "ARTDAG_S3_ENDPOINT_URL": endpoint,
            "ARTDAG_S3_REGION": "us-east-1",
            "ARTDAG_S3_ACCESS_KEY_ID": "test",
            "ARTDAG_S3_SECRET_ACCESS_KEY": "test-secret",
        }


@contextmanager
def nats_settings(tmp_path: Path) -> Iterator[dict[str, str]]:
    yield {"ARTDAG_STORE": "nats"}


@pytest.mark.parametrize("backend", [nats_settings, s3_settings], ids=["nats", "s3"])
def test_upload_render_download_on_a_remote_store(backend: object, tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    write_test_clip(clip, width=320, height=180, fps=25, duration_s=1.0)
    with backend(tmp_path) as env, running_stack(tmp_path / "home", **env) as stack:  # type: ignore[operator]
        with stack.http(timeout=60) as client:
            with clip.open("rb") as handle:
                cid = client.post("/cache/upload", files={"file": ("clip.mp4", handle)}).json()["cid"]
            assert cid == cid_of_file(clip)
            run_id = client.post(
                "/runs", json={"recipe": example_path("resize").read_text(), "inputs": {"video": cid}}
            ).json()["run_id"]
            for _ in range(300):
                run = client.get(f"/runs/{run_id}").json()
                if run["status"] in ("completed", "failed"):
                    break
                time.sleep(0.1)
            assert run["status"] == "completed", run
            raw = client.get(f"/cache/{run['output_cid']}/raw")
            assert cid_of_bytes(raw.content) == run["output_cid"]
            part = client.get(f"/cache/{run['output_cid']}/raw", headers={"Range": "bytes=10-29"})
            assert part.status_code == 206 and part.content == raw.content[10:30]
        # Nothing was written to the local store: the bytes live in the remote one.
        assert not list((stack.home / "cache").rglob("Qm*"))
    out = tmp_path / "out.mp4"
    out.write_bytes(raw.content)
    with av.open(str(out)) as container:
        assert (container.streams.video[0].width, container.streams.video[0].height) == (320, 240)
