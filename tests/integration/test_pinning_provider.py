"""The `pinning` storage provider against a Pinning Service (tests/pinning_service.py) that pins on a
real, offline IPFS node: the same node the provider puts the bytes on."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from aiohttp import web
from pydantic import SecretStr

from artdag_common.cid import cid_of_bytes
from artdag_common.content_store import LocalContentStore
from artdag_common.content_store.ipfs import IpfsContentStore
from artdag_common.errors import (
    InvalidInputError,
    NotFoundError,
    PermanentError,
    RetryableError,
    UnauthorizedError,
)
from services.cache.provider_pinning import (
    MAX_REPLY_BYTES,
    PinningReplica,
    PinningReplyError,
    open_pinning_replica,
)
from services.cache.providers import PinningConfig
from services.cache.replicas import Replica, hash_of
from tests.pinning_service import PinningService, running_pinning_service

MEDIA_BYTES = 300_000


@pytest.fixture
def service(ipfs_api: str) -> Iterator[PinningService]:
    with running_pinning_service(ipfs_api, pin_timeout_s=2.0) as running:
        yield running


def replica_for(
    service: PinningService, tmp_path: Path, *, token: str | None = None, timeout_s: float = 30.0
) -> PinningReplica:
    config = PinningConfig(
        endpoint=service.url,
        access_token=SecretStr(token if token is not None else service.token),
        ipfs_api=service.ipfs_api,
        timeout_s=timeout_s,
    )
    return PinningReplica.from_config(config, spool_dir=tmp_path / "spool", cid_version=0)


@pytest.fixture
async def replica(service: PinningService, tmp_path: Path) -> AsyncIterator[PinningReplica]:
    config = PinningConfig(
        endpoint=service.url, access_token=SecretStr(service.token), ipfs_api=service.ipfs_api, timeout_s=30
    )
    async with AsyncExitStack() as stack:
        yield await open_pinning_replica(config, tmp_path / "spool", stack, cid_version=0)


@pytest.fixture
async def source(tmp_path: Path) -> tuple[LocalContentStore, str, bytes]:
    """A local store holding a few hundred KB no IPFS node has seen yet (fresh random bytes)."""
    store = LocalContentStore(tmp_path / "source")
    media = os.urandom(MEDIA_BYTES)
    return store, await store.put_bytes(media), media


async def test_store_pins_the_cid_and_returns_the_request_id(
    replica: PinningReplica, service: PinningService, source: tuple[LocalContentStore, str, bytes], tmp_path: Path
) -> None:
    store, cid, _ = source
    as_replica: Replica = replica  # mypy checks it fits the replicator's protocol
    requestid = await as_replica.store(cid, store)
    assert requestid is not None

    [pinned] = service.pins()
    assert (pinned["requestid"], pinned["status"]) == (requestid, "pinned")
    assert pinned["pin"]["cid"] == cid
    assert pinned["pin"]["name"] == cid
    async with IpfsContentStore(service.ipfs_api, spool_dir=tmp_path / "check") as node:
        assert await hash_of(node, cid) == cid

    # Storing again asks nothing new of the service: the pinned request is the copy.
    assert await replica.store(cid, store) == requestid
    assert [p["requestid"] for p in service.pins()] == [requestid]


async def test_a_pending_request_for_the_cid_is_reused(
    replica: PinningReplica, service: PinningService, source: tuple[LocalContentStore, str, bytes]
) -> None:
    store, cid, _ = source
    await replica.node.put_bytes(await _bytes_of(store, cid))
    made = await replica.client.add(cid, name="made elsewhere")
    assert made.status == "queued"

    assert await replica.store(cid, store) == made.requestid
    assert [(p["requestid"], p["status"]) for p in service.pins()] == [(made.requestid, "pinned")]


async def test_fetch_reads_the_bytes_back_from_the_node(
    replica: PinningReplica, source: tuple[LocalContentStore, str, bytes], tmp_path: Path
) -> None:
    store, cid, media = source
    requestid = await replica.store(cid, store)
    restored = LocalContentStore(tmp_path / "restored")

    await replica.fetch(cid, restored, requestid)

    assert await _bytes_of(restored, cid) == media


async def test_fetch_of_what_the_node_does_not_hold_is_not_found(replica: PinningReplica, tmp_path: Path) -> None:
    never_stored = cid_of_bytes(os.urandom(1000))
    with pytest.raises(NotFoundError, match=never_stored):
        await replica.fetch(never_stored, LocalContentStore(tmp_path / "restored"), None)


async def test_remove_deletes_the_pin_request(
    replica: PinningReplica, service: PinningService, source: tuple[LocalContentStore, str, bytes]
) -> None:
    store, cid, _ = source
    requestid = await replica.store(cid, store)

    await replica.remove(cid, requestid)
    assert service.pins() == []
    await replica.remove(cid, requestid)  # gone already: no error

    # Without a reference, every request for the CID goes.
    await replica.store(cid, store)
    await replica.client.add(cid)
    await replica.remove(cid, None)
    assert service.pins() == []


async def test_a_wrong_token_is_refused_without_being_repeated(
    service: PinningService,
    source: tuple[LocalContentStore, str, bytes],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, cid, _ = source
    wrong = "not-the-token-" + os.urandom(8).hex()
    replica = replica_for(service, tmp_path, token=wrong)
    caplog.set_level(logging.DEBUG)
    try:
        with pytest.raises(UnauthorizedError) as refused:
            await replica.check()
        with pytest.raises(UnauthorizedError) as refused_store:
            await replica.store(cid, store)
    finally:
        await replica.aclose()

    for error in (refused.value, refused_store.value):
        assert isinstance(error, PermanentError)
        assert "401" in str(error) and error.field == "config.access_token"
        assert wrong not in str(error) and wrong not in repr(error)
    assert wrong not in caplog.text
    assert service.pins() == []


async def test_the_right_token_passes_the_check(replica: PinningReplica) -> None:
    await replica.check()


async def test_a_cid_the_node_cannot_provide_fails_as_retryable(
    replica: PinningReplica, service: PinningService
) -> None:
    # The offline node cannot fetch bytes it never had: the service's pin/add gives up after 2 s.
    unavailable = cid_of_bytes(os.urandom(1000))

    with pytest.raises(RetryableError, match="could not pin") as failed:
        await replica.pin(unavailable)

    assert unavailable in str(failed.value)
    assert "timed out" in str(failed.value)  # the node's reason, passed on through `info`
    assert service.token not in str(failed.value)
    assert service.pins() == []  # the failed request was removed


async def test_a_pin_slower_than_the_timeout_is_retryable(service: PinningService, tmp_path: Path) -> None:
    replica = replica_for(service, tmp_path, timeout_s=0.3)
    try:
        with pytest.raises(RetryableError, match="had not pinned"):
            await replica.pin(cid_of_bytes(os.urandom(1000)))
    finally:
        await replica.aclose()


@pytest.mark.parametrize(
    "reply",
    [b"<html>Bad Gateway</html>", b'{"count": "many", "results": "none"}', b'{"requestid": 7}'],
    ids=["not json", "wrong page", "wrong status"],
)
async def test_a_malformed_reply_is_a_clear_error(
    replica: PinningReplica, service: PinningService, source: tuple[LocalContentStore, str, bytes], reply: bytes
) -> None:
    store, cid, _ = source
    service.broken_reply = reply

    with pytest.raises(PinningReplyError, match=r"the reply is not a Pin(Results|Status)"):
        await replica.check()
    with pytest.raises(PinningReplyError, match="GET /pins"):
        await replica.store(cid, store)
    with pytest.raises(PinningReplyError, match=r"POST /pins: the reply is not a PinStatus"):
        await replica.client.add(cid)


async def test_an_unreachable_service_is_retryable(ipfs_api: str, tmp_path: Path) -> None:
    with running_pinning_service(ipfs_api) as stopped:
        url = stopped.url
    config = PinningConfig(endpoint=url, access_token=SecretStr("t"), ipfs_api=ipfs_api)
    replica = PinningReplica.from_config(config, spool_dir=tmp_path, cid_version=0)
    try:
        with pytest.raises(RetryableError, match="pinning service GET /pins"):
            await replica.check()
    finally:
        await replica.aclose()


async def test_a_reply_too_large_is_refused(replica: PinningReplica, service: PinningService) -> None:
    service.broken_reply = b"[" + b" " * (MAX_REPLY_BYTES + 1) + b"]"
    with pytest.raises(PinningReplyError, match="larger than"):
        await replica.check()


async def test_the_token_does_not_follow_a_redirect(ipfs_api: str, tmp_path: Path) -> None:
    seen_elsewhere: list[str | None] = []

    async def redirect(_: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(f"http://127.0.0.1:{elsewhere_port}/pins")

    async def elsewhere(request: web.Request) -> web.Response:
        seen_elsewhere.append(request.headers.get("Authorization"))
        return web.json_response({"count": 0, "results": []})

    async with _serving(redirect) as redirect_port, _serving(elsewhere) as elsewhere_port:
        config = PinningConfig(
            endpoint=f"http://127.0.0.1:{redirect_port}", access_token=SecretStr("secret"), ipfs_api=ipfs_api
        )
        replica = PinningReplica.from_config(config, spool_dir=tmp_path, cid_version=0)
        try:
            with pytest.raises(PermanentError, match="redirect") as refused:
                await replica.check()
        finally:
            await replica.aclose()
    assert refused.value.field == "config.endpoint"
    assert seen_elsewhere == []


async def test_cidv1_content_is_stored_and_fetched(service: PinningService, tmp_path: Path) -> None:
    source = LocalContentStore(tmp_path / "source", cid_version=1)
    media = os.urandom(MEDIA_BYTES)
    cid = await source.put_bytes(media)
    config = PinningConfig(
        endpoint=service.url, access_token=SecretStr(service.token), ipfs_api=service.ipfs_api, timeout_s=30
    )
    replica = PinningReplica.from_config(config, spool_dir=tmp_path / "spool", cid_version=1)
    try:
        requestid = await replica.store(cid, source)
        restored = LocalContentStore(tmp_path / "restored", cid_version=1)
        await replica.fetch(cid, restored, requestid)
        with pytest.raises(InvalidInputError, match="CIDv0"):
            await replica.store(cid_of_bytes(media, 0), source)
    finally:
        await replica.aclose()
    assert await _bytes_of(restored, cid) == media
    assert [p["pin"]["cid"] for p in service.pins()] == [cid]


@contextlib.asynccontextmanager
async def _serving(handler: Callable[[web.Request], Awaitable[web.Response]]) -> AsyncIterator[int]:
    """`handler` answering every request on a free loopback port."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def _bytes_of(store: LocalContentStore | IpfsContentStore, cid: str) -> bytes:
    return b"".join([chunk async for chunk in store.read(cid)])
