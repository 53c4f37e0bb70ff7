"""Where a storage provider may connect: the guard that keeps providers from being an SSRF probe.

A provider's config names hosts its user chose, and the cache service connects there when the
provider is tested. Unless the caller may reach private networks (an admin, or any user with
`ARTDAG_PROVIDER_ALLOW_PRIVATE`), every address a host resolves to must be public, and only
admins may reach the stack's own bus. The rule is checked when a config is saved (`Reach.check`,
an error naming the field) and again on every connect (`CheckedLoop`, whose `sock_connect` sees
the address actually dialled), so a name that resolves to a public address when saved and to
127.0.0.1 a moment later (DNS rebinding), a redirect or an ambient proxy gains nothing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

from artdag_common.errors import ForbiddenError

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
T = TypeVar("T")

# Within the gateway's wait for the cache (ARTDAG_RPC_TIMEOUT_S, default 5 s).
RESOLVE_TIMEOUT_S = 2.0
NATS_DEFAULT_PORT = 4222
# The well-known NAT64 prefix: 64:ff9b::a00:1 is 10.0.0.1 behind a NAT64 gateway.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo, NAT64), if any."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public(ip: IPAddress) -> bool:
    """Whether `ip` is a global unicast address: not private, loopback, link-local, multicast,
    unspecified, shared (100.64/10), reserved or documentation, nor an IPv6 form of one of those."""
    inner = _embedded_ipv4(ip)
    if inner is not None and not is_public(inner):
        return False
    return ip.is_global and not ip.is_multicast


def parse_ip(text: str) -> IPAddress | None:
    """`text` as an IP address (an IPv6 zone like `%eth0` dropped), or None if it is a name."""
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


@dataclass(frozen=True)
class Endpoint:
    """A host and port a provider's config points at, and the config field that names it."""

    field: str
    host: str
    port: int


def url_endpoint(url: str, field_name: str, default_port: int) -> Endpoint:
    """The host and port of an already validated URL."""
    parts = urlsplit(url)
    return Endpoint(field_name, parts.hostname or "", parts.port or default_port)


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to; empty if it does not (or not within RESOLVE_TIMEOUT_S)."""
    literal = parse_ip(host)
    if literal is not None:
        return [literal]
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_S):
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, TimeoutError) as exc:
        log.debug("%s does not resolve: %s", host, exc)
        return []
    found = [parse_ip(str(info[4][0])) for info in infos]
    return [ip for ip in found if ip is not None]


async def bus_addresses(urls: Iterable[str]) -> frozenset[tuple[IPAddress, int]]:
    """The addresses and ports of the stack's own bus (`ARTDAG_NATS_URL`, one or several URLs)."""
    found: set[tuple[IPAddress, int]] = set()
    for url in urls:
        endpoint = url_endpoint(url.strip(), "nats_url", NATS_DEFAULT_PORT)
        found.update((ip, endpoint.port) for ip in await resolve(endpoint.host, endpoint.port))
    return frozenset(found)


OWN_BUS = "this is the stack's own message bus: only an admin may point a provider at it"
NOT_PUBLIC = "a private, loopback, link-local or otherwise non-public address"


class EgressRefusedError(ConnectionRefusedError):
    """A connection the provider may not make; to the client it looks like any refused connection."""


@dataclass(frozen=True)
class Reach:
    """Where one caller's provider may connect: public addresses only, or private ones too; and
    never `bus` (the stack's own bus, for non-admins)."""

    private: bool
    bus: frozenset[tuple[IPAddress, int]] = field(default_factory=frozenset)

    def _is_bus(self, ip: IPAddress, port: int) -> bool:
        if (ip, port) in self.bus:
            return True
        # A bus on loopback is reached through any loopback address, and through 0.0.0.0 / ::.
        local = ip.is_loopback or ip.is_unspecified
        return local and any(port == p and (b.is_loopback or b.is_unspecified) for b, p in self.bus)

    def refusal(self, ip: IPAddress, port: int) -> str | None:
        """Why `ip:port` may not be reached, or None if it may."""
        if self._is_bus(ip, port):
            return OWN_BUS
        if not self.private and not is_public(ip):
            return NOT_PUBLIC
        return None

    async def check(self, endpoint: Endpoint) -> None:
        """Raise `ForbiddenError` naming the field unless every address of `endpoint` may be reached."""
        if self.private and not self.bus:
            return  # an admin: nothing to look up
        addresses = await resolve(endpoint.host, endpoint.port)
        reasons = {self.refusal(ip, endpoint.port) for ip in addresses} - {None}
        if OWN_BUS in reasons:
            raise ForbiddenError(OWN_BUS, field=endpoint.field)
        # A name that does not resolve gets the same answer as a private address: whether an
        # internal name exists is not for a user to find out.
        if reasons or (not addresses and not self.private):
            raise ForbiddenError(
                f"{endpoint.host} is not a public address (it is private, loopback or link-local, or does not"
                " resolve): only an admin may point a provider there, or an operator may allow it for everyone"
                " with ARTDAG_PROVIDER_ALLOW_PRIVATE=true",
                field=endpoint.field,
            )

    def check_connect(self, family: int, address: Any) -> None:
        """Raise `EgressRefusedError` unless a socket of `family` may connect to `address` (at connect time)."""
        if family not in (socket.AF_INET, socket.AF_INET6) or not isinstance(address, tuple):
            raise EgressRefusedError("a provider connects over TCP/IP only")
        ip = parse_ip(str(address[0]))
        if ip is None:
            raise EgressRefusedError("a provider connects to resolved addresses only")
        reason = self.refusal(ip, int(address[1]))
        if reason is not None:
            log.debug("refused a provider's connection to %s port %s: %s", ip, address[1], reason)
            raise EgressRefusedError(f"refused: {reason}")


class CheckedLoop(asyncio.SelectorEventLoop):
    """An event loop that makes every TCP connection ask `reach` first.

    `sock_connect` is where asyncio's `create_connection`, aiohttp (through aiohappyeyeballs) and
    nats-py all end up, with the address already resolved: the one place every client passes.
    """

    def __init__(self, reach: Reach) -> None:
        super().__init__()
        self.reach = reach

    async def sock_connect(self, sock: socket.socket, address: Any) -> None:
        self.reach.check_connect(sock.family, address)
        await super().sock_connect(sock, address)


def run_checked(reach: Reach, work: Callable[[], Awaitable[T]], timeout_s: float) -> T:
    """Run `work()` to completion on a `CheckedLoop` of its own (call it in a worker thread), within `timeout_s`."""

    async def bounded() -> T:
        async with asyncio.timeout(timeout_s):
            return await work()

    with asyncio.Runner(loop_factory=lambda: CheckedLoop(reach)) as runner:
        return runner.run(bounded())
