"""What the contract suite cannot say for every backend: backend selection, S3 failure paths."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from artdag_common.bus import connect
from artdag_common.cid import cid_of_bytes
from artdag_common.content_store import LocalContentStore, open_store, open_store_async
from artdag_common.content_store.ipfs import IpfsContentStore
from artdag_common.content_store.nats import NatsContentStore
from artdag_common.content_store.s3 import S3ContentStore
from artdag_common.errors import NotFoundError, RetryableError
from artdag_common.nats_server import EmbeddedNatsServer, free_port
from artdag_common.settings import CommonSettings
from artdag_dev.testing import moto_s3_server, unique

CREDS: dict[str, Any] = {"access_key_id": "testing", "secret_access_key": "testing", "region": "us-east-1"}


@pytest.fixture(scope="module")
def s3_bucket(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    with moto_s3_server(tmp_path_factory.mktemp("moto") / "moto.log") as endpoint:
        client = botocore.session.get_session().create_client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        client.create_bucket(Bucket="backends")
        client.close()
        yield endpoint, "backends"


def settings(tmp_path: Path, **values: Any) -> CommonSettings:
    return CommonSettings(home=tmp_path, **values)


def test_the_local_store_is_the_default(tmp_path: Path) -> None:
    store = open_store(settings(tmp_path))
    assert isinstance(store, LocalContentStore)
    assert store.root == tmp_path / "cache"


def test_the_store_is_chosen_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTDAG_HOME", str(tmp_path))
    monkeypatch.setenv("ARTDAG_STORE", "s3")
    monkeypatch.setenv("ARTDAG_S3_BUCKET", "media")
    monkeypatch.setenv("ARTDAG_S3_PREFIX", "artdag/")
    monkeypatch.setenv("ARTDAG_S3_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("ARTDAG_S3_ACCESS_KEY_ID", "key")
    monkeypatch.setenv("ARTDAG_S3_SECRET_ACCESS_KEY", "hunter2")
    monkeypatch.setenv("ARTDAG_CID_VERSION", "1")
    config = CommonSettings()
    assert "hunter2" not in repr(config)
    store = open_store(config)
    assert isinstance(store, S3ContentStore)
    assert (store.bucket, store.prefix, store.cid_version) == ("media", "artdag/", 1)
    assert store.spool_dir == tmp_path / "spool"


def test_store_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ARTDAG_S3_BUCKET"):
        settings(tmp_path, store="s3")
    with pytest.raises(ValueError, match="both"):
        settings(tmp_path, store="s3", s3_bucket="b", s3_access_key_id="k")
    with pytest.raises(ValueError):
        settings(tmp_path, store="gcs")
    with pytest.raises(ValueError):
        settings(tmp_path, nats_object_bucket="has.dots")
    with pytest.raises(ValueError):
        settings(tmp_path, s3_prefix="../up/")


def test_the_ipfs_store_uses_the_legacy_api_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IPFS_API", "/ip4/10.0.0.5/tcp/5001")
    monkeypatch.setenv("IPFS_TIMEOUT", "12")
    store = open_store(CommonSettings(home=tmp_path, store="ipfs"))
    assert isinstance(store, IpfsContentStore)
    assert (store.api, store.timeout_s) == ("/ip4/10.0.0.5/tcp/5001", 12.0)


def test_the_nats_store_needs_a_connection(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nc="):
        open_store(settings(tmp_path, store="nats"))


async def test_open_store_async_creates_the_bucket_and_closes_with_the_stack(
    tmp_path: Path, nats: EmbeddedNatsServer
) -> None:
    nc = await connect(nats.url, "pytest-open-store", login=nats.admin)
    bucket = unique("opened")
    try:
        async with AsyncExitStack() as stack:
            store = await open_store_async(settings(tmp_path, store="nats", nats_object_bucket=bucket), stack, nc=nc)
            assert isinstance(store, NatsContentStore)
            # The bucket exists before the first write.
            await nc.jetstream().object_store(bucket)
        await nc.jetstream().delete_object_store(bucket)
    finally:
        await nc.close()


async def test_open_store_async_fails_fast_on_a_missing_bucket(tmp_path: Path, s3_bucket: tuple[str, str]) -> None:
    endpoint, _ = s3_bucket
    config = settings(
        tmp_path,
        store="s3",
        s3_bucket="no-such-bucket",
        s3_endpoint_url=endpoint,
        s3_region="us-east-1",
        s3_access_key_id="testing",
        s3_secret_access_key="testing",
    )
    async with AsyncExitStack() as stack:
        with pytest.raises(NotFoundError):
            await open_store_async(config, stack)


async def test_a_failed_multipart_upload_is_aborted(tmp_path: Path, s3_bucket: tuple[str, str]) -> None:
    endpoint, bucket = s3_bucket
    prefix = f"{unique('mp')}/"
    async with S3ContentStore(
        bucket, spool_dir=tmp_path / "spool", prefix=prefix, endpoint_url=endpoint, part_size=5 << 20, **CREDS
    ) as store:
        client = await store._s3()
        real_upload_part = client.upload_part
        calls = 0

        async def flaky_upload_part(**kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            if calls == 2:
                raise ConnectionResetError("the network went away")
            return await real_upload_part(**kwargs)

        client.upload_part = flaky_upload_part
        data = os.urandom(11 << 20)
        writer = store.writer()
        await writer.write(data)
        with pytest.raises(RetryableError):
            await writer.commit()
        client.upload_part = real_upload_part

        assert calls == 2
        assert not await store.exists(cid_of_bytes(data))
        uploads = await client.list_multipart_uploads(Bucket=bucket, Prefix=prefix)
        assert uploads.get("Uploads", []) == []
        assert list((tmp_path / "spool").iterdir()) == []

        # The same bytes go up on a second try, in three parts.
        again = store.writer()
        await again.write(data)
        assert await again.commit() == cid_of_bytes(data)
        assert await store.size(cid_of_bytes(data)) == len(data)


async def test_an_unreachable_endpoint_is_retryable(tmp_path: Path) -> None:
    store = S3ContentStore(
        "bucket", spool_dir=tmp_path / "spool", endpoint_url=f"http://127.0.0.1:{free_port()}", **CREDS
    )
    try:
        with pytest.raises(RetryableError):
            await store.exists(cid_of_bytes(b"x"))
    finally:
        await store.aclose()
