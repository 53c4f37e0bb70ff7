"""Storage providers are no SSRF probe (issue 17): through the gateway and the cache service in process.

A plain user's provider reaches public addresses only (`ARTDAG_PROVIDER_ALLOW_PRIVATE` off, as by
default), `local` providers are an admin's and stay under the allowed roots, a test never signs with
the server's own AWS credentials, and every failed test reads the same. A loopback listener records
every connection made to it, so "refused" means nothing arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from artdag_common.db import make_engine, session_factory
from artdag_common.nats_server import EmbeddedNatsServer, free_port
from artdag_common.schemas import StorageProviderInput, Viewer
from services.cache import egress, providers
from services.cache.providers import UNREACHABLE, ProviderBook, ProviderPolicy, SecretBox
from tests.integration.gateway_harness import Harness, gateway_harness

AMBIENT_AWS = {
    "AWS_ACCESS_KEY_ID": "AKIAAMBIENTSERVERKEY",
    "AWS_SECRET_ACCESS_KEY": "ambient-server-secret",
    "AWS_SESSION_TOKEN": "AmbientServerSessionToken",
}
FORBIDDEN_403 = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"
SERVER_ERROR_500 = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"


TLS_HANDSHAKE = b"\x16"  # the first byte of a TLS record that opens a handshake


class Listener:
    """A TCP listener on 127.0.0.1 and ::1 (one port) that records what arrives on each connection and
    answers `answer` once a request's head is in (None: never answers)."""

    def __init__(self, answer: bytes | None = FORBIDDEN_403) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Listener:
        self.port = free_port()
        self._server = await asyncio.start_server(self._serve, host=["127.0.0.1", "::1"], port=self.port)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index = len(self.requests)
        self.requests.append(b"")
        try:
            with contextlib.suppress(TimeoutError, ConnectionError):
                async with asyncio.timeout(0.5):
                    while b"\r\n\r\n" not in self.requests[index]:
                        chunk = await reader.read(65536)
                        if not chunk:
                            break
                        self.requests[index] += chunk
                        if self.requests[index][:1] == TLS_HANDSHAKE:
                            break  # a TLS client hello: no head will come, answer at once (the client fails fast)
            if self.answer is None:
                with contextlib.suppress(ConnectionError):
                    await reader.read()  # until the client gives up and closes
                return
            writer.write(self.answer)
            await writer.drain()
        finally:
            writer.close()


@pytest.fixture
async def harness(nats: EmbeddedNatsServer, tmp_path: Path) -> AsyncIterator[Harness]:
    async with gateway_harness(nats, tmp_path) as running:  # ARTDAG_PROVIDER_ALLOW_PRIVATE: off
        yield running


async def saved_before_the_rules(harness: Harness, kind: str, config: dict[str, Any], owner: str) -> str:
    """A provider as one could be saved before these rules (straight into the table): its id."""
    engine = make_engine(f"sqlite+aiosqlite:///{harness.home / 'artdag.db'}")
    try:
        anything = ProviderPolicy(local_roots=(Path("/"),), allow_private=True)
        book = ProviderBook(session_factory(engine), SecretBox.from_settings(None, harness.home), anything)
        request = StorageProviderInput(name="old", type=kind, config=config, owner=owner, viewer=Viewer(admin=True))
        return (await book.add(request)).id
    finally:
        await engine.dispose()


def refused(response: httpx.Response, status: int, field: str) -> bool:
    """Whether `response` is the JSON error `status` naming `field`."""
    return response.status_code == status and response.json()["error"]["field"] == field


async def test_a_plain_users_provider_reaches_no_inside_address(
    harness: Harness, nats: EmbeddedNatsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = harness.client
    async with Listener() as listener:
        port = listener.port
        aimed_inside = [
            ("s3", {"bucket": "b-1", "endpoint_url": f"http://127.0.0.1:{port}"}, "config.endpoint_url"),
            ("s3", {"bucket": "b-1", "endpoint_url": "http://10.20.30.40:9000"}, "config.endpoint_url"),
            ("s3", {"bucket": "b-1", "endpoint_url": "http://169.254.169.254/latest"}, "config.endpoint_url"),
            ("s3", {"bucket": "b-1", "endpoint_url": f"http://[::1]:{port}"}, "config.endpoint_url"),
            ("s3", {"bucket": "b-1", "endpoint_url": f"https://localhost:{port}"}, "config.endpoint_url"),
            ("ipfs", {"api": f"/ip4/127.0.0.1/tcp/{port}"}, "config.api"),
            ("ipfs", {"api": f"/dns/localhost/tcp/{port}/http"}, "config.api"),
            ("ipfs", {"api": f"/ip6/::1/tcp/{port}"}, "config.api"),
            ("nats", {"url": f"nats://127.0.0.1:{port}"}, "config.url"),
            ("nats", {"url": f"nats://93.184.216.34:4222,nats://localhost:{port}"}, "config.url"),
            ("nats", {"url": nats.url}, "config.url"),  # the stack's own bus
        ]
        for kind, config, field in aimed_inside:
            response = await alice.post("/storage/add", json={"name": "probe", "type": kind, "config": config})
            assert refused(response, 403, field), (config, response.text)
            assert response.json()["error"]["code"] == "forbidden"
        form = await alice.post(
            "/storage", data={"name": "p", "type": "s3", "bucket": "b-1", "endpoint_url": "http://10.0.0.1"}
        )
        assert refused(form, 403, "config.endpoint_url"), form.text
        ui = await alice.post("/ui/storage", data={"name": "p", "type": "ipfs", "config.api": "/ip4/10.0.0.1/tcp/5001"})
        assert ui.status_code == 403 and "not a public address" in ui.text

        # Changing a provider's endpoint is checked like adding one.
        public = await alice.post("/storage/add", json={"name": "aws", "type": "s3", "config": {"bucket": "b-1"}})
        assert public.status_code == 201, public.text
        moved = await alice.patch(
            f"/storage/{public.json()['id']}", json={"config": {"endpoint_url": "http://169.254.169.254"}}
        )
        assert refused(moved, 403, "config.endpoint_url"), moved.text

        # Neither other schemes nor credentials in a URL.
        for kind, config, field in [
            ("s3", {"bucket": "b-1", "endpoint_url": "file:///etc/passwd"}, "config.endpoint_url"),
            ("s3", {"bucket": "b-1", "endpoint_url": "gopher://93.184.216.34:70"}, "config.endpoint_url"),
            ("s3", {"bucket": "b-1", "endpoint_url": "http://user:pw@93.184.216.34"}, "config.endpoint_url"),
            ("nats", {"url": "ws://93.184.216.34:80"}, "config.url"),
            ("nats", {"url": "nats://user:pw@93.184.216.34:4222"}, "config.url"),
            ("s3", {"bucket": "b-1", "access_key_id": "AK"}, "config.secret_access_key"),  # half a key pair
        ]:
            response = await alice.post("/storage/add", json={"name": "x", "type": kind, "config": config})
            assert refused(response, 422, field), (config, response.text)

        # One saved before these rules: its test is refused before anything connects.
        old = await saved_before_the_rules(
            harness, "s3", {"bucket": "b-1", "endpoint_url": f"http://127.0.0.1:{port}"}, "alice"
        )
        assert refused(await alice.post(f"/storage/{old}/test"), 403, "config.endpoint_url")

        # DNS rebinding: the name looked public when saved and tested, then resolves to loopback when dialled.
        looked_up = egress.resolve

        async def rebinding(host: str, port: int) -> list[egress.IPAddress]:
            return [ipaddress.ip_address("93.184.216.34")] if host == "localhost" else await looked_up(host, port)

        monkeypatch.setattr(egress, "resolve", rebinding)
        rebound = await alice.post(
            "/storage/add",
            json={
                "name": "rebound",
                "type": "s3",
                "config": {"bucket": "b-1", "endpoint_url": f"http://localhost:{port}"},
            },
        )
        assert rebound.status_code == 201, rebound.text
        tested = (await alice.post(f"/storage/{rebound.json()['id']}/test")).json()
        assert (tested["ok"], tested["error"]) == (False, UNREACHABLE)
    assert listener.requests == [], "a plain user's provider reached the listener"


async def test_local_providers_are_an_admins_under_the_allowed_roots(harness: Harness, tmp_path: Path) -> None:
    alice, root = harness.client, harness.as_user("root")
    roots = harness.home / "providers"  # the default ARTDAG_PROVIDER_LOCAL_ROOTS
    (roots / "disk").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (roots / "escape").symlink_to(outside)

    def local(path: Path | str) -> dict[str, Any]:
        return {"name": "disk", "type": "local", "config": {"path": str(path)}}

    assert refused(await alice.post("/storage/add", json=local(roots / "disk")), 403, "type")
    for path in ("/etc", outside, outside / "new", roots / "escape", roots / "escape" / "deeper", roots.parent):
        assert refused(await root.post("/storage/add", json=local(path)), 403, "config.path"), path
    assert refused(await root.post("/storage/add", json=local(f"{roots}/../../etc")), 422, "config.path")
    assert list(outside.iterdir()) == [], "a refused path was written to"

    added = await root.post("/storage/add", json=local(roots / "disk"))
    assert added.status_code == 201, added.text
    tested = await root.post(f"/storage/{added.json()['id']}/test")
    assert tested.json()["ok"] is True, tested.text
    # Moved outside by a change: refused as well.
    moved = await root.patch(f"/storage/{added.json()['id']}", json={"config": {"path": str(outside)}})
    assert refused(moved, 403, "config.path")

    old = await saved_before_the_rules(harness, "local", {"path": str(outside)}, "alice")
    assert refused(await alice.post(f"/storage/{old}/test"), 403, "type")
    assert list(outside.iterdir()) == []


async def test_an_admins_test_sends_no_server_credentials_and_every_failure_reads_the_same(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="services.cache.providers")
    for name, value in AMBIENT_AWS.items():  # the cache service runs in this process
        monkeypatch.setenv(name, value)
    # The silent listener's test ends sooner (long enough for the others to meet their own failure).
    monkeypatch.setattr(providers, "ROUND_TRIP_TIMEOUT_S", 2.5)
    root = harness.as_user("root")  # may reach private addresses

    async def add(endpoint_url: str, **keys: str) -> str:
        config = {"bucket": "b-1", "endpoint_url": endpoint_url, **keys}
        response = await root.post("/storage/add", json={"name": "s3", "type": "s3", "config": config})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async with Listener(FORBIDDEN_403) as forbids, Listener(SERVER_ERROR_500) as fails, Listener(None) as silent:
        cases = {
            "refused": await add(f"http://127.0.0.1:{free_port()}"),
            "403": await add(f"http://127.0.0.1:{forbids.port}"),
            "500": await add(f"http://127.0.0.1:{fails.port}"),
            "no such name": await add("http://no-such-host.invalid:9000"),
            "TLS": await add(f"https://127.0.0.1:{forbids.port}"),
            "timeout": await add(f"http://127.0.0.1:{silent.port}"),
        }
        replies = await asyncio.gather(*(root.post(f"/storage/{pid}/test") for pid in cases.values()))
        answers = {
            case: (r.status_code, r.json()["ok"], r.json()["error"]) for case, r in zip(cases, replies, strict=True)
        }
        assert set(answers.values()) == {(200, False, UNREACHABLE)}, answers
        # What the client cannot tell apart, the server's log does: these were six different failures.
        causes = {r.getMessage().split(": ", 1)[1] for r in caplog.records if "test failed: " in r.getMessage()}
        assert len(causes) == len(cases), causes

        unsigned = [r for r in forbids.requests if r.startswith(b"HEAD ")]
        assert unsigned, f"the 403 listener saw no request: {forbids.requests}"
        for request in unsigned:
            assert b"authorization" not in request.lower() and b"x-amz-security-token" not in request.lower()
        forbids.requests.clear()

        # With keys of its own, a provider signs with those, never with the server's session token.
        keyed = await add(f"http://127.0.0.1:{forbids.port}", access_key_id="AKPROVIDERKEY", secret_access_key="s")
        assert (await root.post(f"/storage/{keyed}/test")).json()["error"] == UNREACHABLE
        signed = [r for r in forbids.requests if r.startswith(b"HEAD ")]
        assert signed and all(b"Credential=AKPROVIDERKEY/" in r for r in signed), forbids.requests
        every = b"".join(forbids.requests + fails.requests + silent.requests)
    for value in AMBIENT_AWS.values():
        assert value.encode() not in every
