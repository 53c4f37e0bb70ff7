"""The storage providers' egress guard: which addresses are public, and refusals on save and at connect time."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
from collections.abc import Iterator

import pytest

from artdag_common.errors import ForbiddenError
from services.cache.egress import (
    OWN_BUS,
    EgressRefusedError,
    Endpoint,
    Reach,
    is_public,
    run_checked,
)

PLAIN = Reach(private=False)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud instance metadata
        "100.64.0.1",  # shared (carrier-grade NAT)
        "0.0.0.0",
        "255.255.255.255",
        "224.0.0.1",
        "239.1.2.3",
        "192.0.2.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:10.0.0.1",
        "2002:7f00:1::",  # 6to4 around 127.0.0.1
        "2002:a9fe:a9fe::",  # 6to4 around 169.254.169.254
        "64:ff9b::a00:1",  # NAT64 around 10.0.0.1
    ],
)
def test_inside_addresses_are_not_public(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2001:4860:4860::8888", "64:ff9b::808:808"])
def test_global_addresses_are_public(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "10.9.8.7", "169.254.169.254", "::1", "localhost", "no-such-host.invalid"]
)
async def test_a_plain_users_endpoint_inside_or_unresolved_is_refused_alike(host: str) -> None:
    with pytest.raises(ForbiddenError) as refused:
        await PLAIN.check(Endpoint("config.endpoint_url", host, 9000))
    assert refused.value.field == "config.endpoint_url"
    # One message for all: whether an internal name exists or resolves is not told.
    assert f"{host} is not a public address" in refused.value.message


async def test_public_addresses_pass_and_an_admin_reaches_anything() -> None:
    await PLAIN.check(Endpoint("config.api", "93.184.216.34", 5001))
    await Reach(private=True).check(Endpoint("config.api", "no-such-host.invalid", 5001))
    await Reach(private=True).check(Endpoint("config.api", "127.0.0.1", 5001))


async def test_the_own_bus_is_refused_however_it_is_spelled() -> None:
    bus = frozenset({(ipaddress.ip_address("127.0.0.1"), 4222)})
    allowed_private = Reach(private=True, bus=bus)
    for host in ("127.0.0.1", "127.0.0.2", "localhost", "0.0.0.0", "::1"):
        with pytest.raises(ForbiddenError, match=OWN_BUS):
            await allowed_private.check(Endpoint("config.url", host, 4222))
    await allowed_private.check(Endpoint("config.url", "127.0.0.1", 4223))  # another port: another server


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A loopback TCP listener that never accepts: the kernel completes connections into its backlog."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        sock.setblocking(False)
        yield sock


def _accepted(listener: socket.socket) -> int:
    count = 0
    while True:
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


def test_the_checked_loop_refuses_at_connect_time(listener: socket.socket) -> None:
    port = listener.getsockname()[1]

    async def dial(host: str) -> None:
        _, writer = await asyncio.open_connection(host, port)
        writer.close()
        await writer.wait_closed()

    # "localhost" passes no check of its name: the address it resolves to is refused as it is dialled.
    for host in ("127.0.0.1", "localhost"):
        with pytest.raises(EgressRefusedError):
            run_checked(PLAIN, functools.partial(dial, host), timeout_s=5)
    assert _accepted(listener) == 0
    run_checked(Reach(private=True), lambda: dial("127.0.0.1"), timeout_s=5)
    assert _accepted(listener) == 1
