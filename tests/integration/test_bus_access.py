"""The bus is not open: probes an attacker on the network (or in a compromised pod) would try.

Each runs against a real nats-server configured the way `artdag up` configures it.
"""

from __future__ import annotations

import asyncio
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats import connect as nats_connect
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeoutError

from artdag_common import streams, subjects
from artdag_common.bus import connect
from artdag_common.bus_access import USERS, BusCredentials, BusLogin, grants, home_login, inbox_prefix
from artdag_common.nats_server import EmbeddedNatsServer
from artdag_common.runtime import ServiceRuntime
from artdag_common.settings import CommonSettings


class Refusals:
    """What the server refused a client, as nats-py reports it."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    async def note(self, exc: Exception) -> None:
        self.errors.append(str(exc))

    async def wait_for(self, fragment: str, timeout_s: float = 3.0) -> bool:
        for _ in range(int(timeout_s / 0.05)):
            if any(fragment.lower() in error.lower() for error in self.errors):  # nats-py lowercases some
                return True
            await asyncio.sleep(0.05)
        return False


async def _client(server: EmbeddedNatsServer, login: BusLogin, refusals: Refusals) -> NatsClient:
    return await nats_connect(
        server.url,
        user=login.user,
        password=login.password,
        inbox_prefix=inbox_prefix(login.user),
        error_cb=refusals.note,
        allow_reconnect=False,
    )


@pytest.fixture
async def admin(nats: EmbeddedNatsServer) -> AsyncIterator[NatsClient]:
    client = await connect(nats.url, "pytest-admin", login=nats.admin)
    await streams.provision(client.jetstream())
    try:
        yield client
    finally:
        await client.close()


def _login(server: EmbeddedNatsServer, user: str) -> BusLogin:
    assert server.credentials is not None
    return server.credentials.login(user)


async def test_a_client_without_credentials_cannot_connect(nats: EmbeddedNatsServer) -> None:
    with pytest.raises(NatsError, match="Authorization Violation"):
        await nats_connect(nats.url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2)


async def test_a_wrong_password_cannot_connect(nats: EmbeddedNatsServer) -> None:
    with pytest.raises(NatsError, match="Authorization Violation"):
        await nats_connect(nats.url, user="executor", password="guess", allow_reconnect=False, max_reconnect_attempts=0)


async def test_an_executor_cannot_issue_tokens_read_verify_requests_or_announce_a_run(
    nats: EmbeddedNatsServer, admin: NatsClient
) -> None:
    refusals = Refusals()
    executor = await _client(nats, _login(nats, "executor"), refusals)
    try:
        # Asking for an admin token: the server drops the request (nobody answers it).
        with pytest.raises(NatsTimeoutError):
            await executor.request(subjects.rpc("auth", "issue"), b'{"user": "x", "roles": ["admin"]}', timeout=1)
        assert await refusals.wait_for('publish to "artdag.rpc.auth.issue"')

        # Listening for bearer tokens on their way to the auth service.
        overheard: list[bytes] = []

        async def overhear(msg: Msg) -> None:
            overheard.append(msg.data)

        await executor.subscribe(subjects.rpc("auth", "verify"), cb=overhear)
        assert await refusals.wait_for('subscription to "artdag.rpc.auth.verify"')
        await admin.publish(subjects.rpc("auth", "verify"), b'{"token": "secret"}')
        await admin.flush()
        await asyncio.sleep(0.3)
        assert overheard == []

        # Announcing that a run completed (the cache would record its outputs and provenance).
        run_completed = subjects.run_event("run-forged", "completed")
        await executor.publish(run_completed, b"{}")
        assert await refusals.wait_for(f'publish to "{run_completed}"')
        with pytest.raises(NatsTimeoutError):
            await executor.jetstream().publish(run_completed, b"{}", timeout=1)
        info = await admin.jetstream().stream_info(streams.EVENTS.name or "", subjects_filter=run_completed)
        assert not (info.state.subjects or {}).get(run_completed)

        # Reading another service's replies, or making a stream that captures the auth requests.
        await executor.subscribe(f"{inbox_prefix('gateway')}.>")
        assert await refusals.wait_for('subscription to "_INBOX.gateway.>"')
        with pytest.raises(NatsTimeoutError):
            await executor.request("$JS.API.STREAM.CREATE.CAPTURE", b'{"name": "CAPTURE"}', timeout=1)
        assert await refusals.wait_for('publish to "$JS.API.STREAM.CREATE.CAPTURE"')
    finally:
        await executor.close()


async def test_only_the_auth_service_answers_verify_and_the_gateway_cannot_impersonate_it(
    nats: EmbeddedNatsServer,
) -> None:
    refusals = Refusals()
    gateway = await _client(nats, _login(nats, "gateway"), refusals)
    try:
        await gateway.subscribe(subjects.rpc("auth", "verify"), queue=subjects.rpc_queue("auth"))
        assert await refusals.wait_for('subscription to "artdag.rpc.auth.verify"')
        # The gateway may ask to verify and to revoke, never to issue.
        await gateway.publish(subjects.rpc("auth", "issue"), b"{}")
        assert await refusals.wait_for('publish to "artdag.rpc.auth.issue"')
    finally:
        await gateway.close()


async def test_each_service_does_its_work_within_its_grant(nats: EmbeddedNatsServer, admin: NatsClient) -> None:
    """The grants are not so tight that a service cannot do its job: a spot check per service."""
    refusals = Refusals()
    executor = await _client(nats, _login(nats, "executor"), refusals)
    planner = await _client(nats, _login(nats, "planner"), refusals)
    try:
        await executor.jetstream().publish(subjects.step_event("run-a", "step-a"), b"{}")
        claims = await executor.jetstream().key_value(streams.KV_CLAIMS.bucket)
        await claims.put("step-a", b"executor-1")
        await planner.jetstream().publish(subjects.run_event("run-a", "completed"), b"{}")
        runs = await planner.jetstream().key_value(streams.KV_RUNS.bucket)
        await runs.put("run-a", b"{}")
        assert refusals.errors == []
        # ... but an executor writes no run state.
        with pytest.raises(NatsTimeoutError):
            await (await executor.jetstream(timeout=1).key_value(streams.KV_RUNS.bucket)).put(
                "run-a", b"{}", validate_keys=True
            )
    finally:
        await executor.close()
        await planner.close()


def test_every_service_and_admin_has_a_grant_and_only_admin_may_issue() -> None:
    table = grants("artdag_content")
    assert set(table) == set(USERS)
    issue = subjects.rpc("auth", "issue")
    may_issue = {user for user, grant in table.items() if issue in grant.publish or ">" in grant.publish}
    assert may_issue == {"admin"}
    hears_auth = {
        user for user, grant in table.items() if any(s.startswith("artdag.rpc.auth") for s in grant.subscribe)
    }
    assert hears_auth == {"auth"}


def test_saved_credentials_and_the_server_config_are_private(tmp_path: Path) -> None:
    credentials = BusCredentials.ensure(tmp_path)
    path = BusCredentials.path(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    again = BusCredentials.ensure(tmp_path)
    assert again.login("executor") == credentials.login("executor")  # made once, then kept
    assert "password" not in repr(credentials.login("executor"))
    with EmbeddedNatsServer(tmp_path / "nats", credentials=credentials):
        assert stat.S_IMODE((tmp_path / "nats" / "server.conf").stat().st_mode) == 0o600


def _certificate_authority(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a certificate for 127.0.0.1 signed by it: (ca.pem, server.pem, server.key)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def build(subject: str, issuer: str, public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        build("artdag test CA", "artdag test CA", ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = (
        build("127.0.0.1", "artdag test CA", server_key.public_key())
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = (directory / "ca.pem", directory / "server.pem", directory / "server.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


async def test_a_service_reaches_a_tls_bus_with_the_ca_it_is_given(tmp_path: Path) -> None:
    ca, cert, key = _certificate_authority(tmp_path)
    credentials = BusCredentials.generate()
    with EmbeddedNatsServer(tmp_path / "nats", credentials=credentials, tls_files=(cert, key)) as server:
        login = credentials.login("executor")
        settings = CommonSettings(
            home=tmp_path, nats_url=server.url, nats_user=login.user, nats_password=login.password, nats_tls_ca=ca
        )
        client = await connect(settings.nats.url, "pytest-tls", login=settings.nats.login, tls=settings.nats.tls)
        try:
            assert client.is_connected
        finally:
            await client.close()
        # Without the CA the server's certificate is not trusted: no connection.
        with pytest.raises(Exception, match=r"(?i)certificate"):
            await nats_connect(
                server.url,
                user=login.user,
                password=login.password,
                allow_reconnect=False,
                max_reconnect_attempts=0,
                connect_timeout=2,
            )
    with pytest.raises(ValueError, match="ARTDAG_NATS_TLS_CA"):
        CommonSettings(home=tmp_path, nats_tls_ca=tmp_path / "missing.pem")


async def test_a_service_whose_home_holds_the_logins_connects_as_itself(tmp_path: Path) -> None:
    """compose.yaml's services set no login: each finds its own in the shared home."""
    credentials = BusCredentials.ensure(tmp_path / "home")
    assert home_login(tmp_path / "home", "executor") == credentials.login("executor")
    assert home_login(tmp_path / "elsewhere", "executor") is None
    with EmbeddedNatsServer(tmp_path / "nats", credentials=credentials) as server:
        admin = await connect(server.url, "pytest-admin", login=server.admin)
        await streams.provision(admin.jetstream())
        runtime = ServiceRuntime("executor", CommonSettings(home=tmp_path / "home", nats_url=server.url))
        try:
            await runtime.open()
            assert runtime.nc.is_connected
            refusals = Refusals()
            runtime.nc._error_cb = refusals.note  # nats-py keeps its error callback here
            await runtime.nc.publish(subjects.rpc("auth", "issue"), b"{}")
            assert await refusals.wait_for('publish to "artdag.rpc.auth.issue"'), "it is the executor, not admin"
        finally:
            await runtime.close()
            await admin.close()
