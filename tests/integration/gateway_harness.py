"""The gateway app in process, with the cache and auth services (and, if asked, the planner) over a
real nats-server, and tokens.

Every client it hands out authenticates like a real one: `Authorization: Bearer <token>` for a token
the auth service issued (alice, bob: plain users; root: admin).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from nats.aio.client import Client as NatsClient

from artdag_common import rpc, streams
from artdag_common.bus import connect
from artdag_common.contracts import Auth
from artdag_common.db import migrate
from artdag_common.nats_server import EmbeddedNatsServer
from artdag_common.runtime import ServiceRuntime
from artdag_common.schemas import IssueTokenRequest
from artdag_common.settings import NESTED
from artdag_dev.testing import bus_settings
from services.auth.app import start as start_auth
from services.auth.settings import AuthSettings
from services.cache.app import start as start_cache
from services.cache.settings import CacheSettings
from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from services.planner.app import start as start_planner_service
from services.planner.settings import PlannerSettings


@dataclass
class Harness:
    client: httpx.AsyncClient
    """Authenticated as alice (a plain user)."""
    anonymous: httpx.AsyncClient
    home: Path
    imports: Path
    nc: NatsClient
    app: FastAPI
    tokens: dict[str, str] = field(default_factory=dict)
    extra: list[httpx.AsyncClient] = field(default_factory=list)

    def as_user(self, name: str) -> httpx.AsyncClient:
        """A client that sends `name`'s token (alice, bob, root)."""
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://gateway",
            headers={"Authorization": f"Bearer {self.tokens[name]}"},
        )
        self.extra.append(client)
        return client

    async def issue(self, user: str, *, roles: list[str] | None = None, ttl_s: float | None = None) -> str:
        issued = await rpc.call(
            self.nc, Auth.issue, IssueTokenRequest(user=user, roles=roles or [], ttl_s=ttl_s), timeout_s=5.0
        )
        return issued.token


@asynccontextmanager
async def gateway_harness(
    nats: EmbeddedNatsServer,
    tmp_path: Path,
    *,
    start_cache_service: bool = True,
    start_planner: bool = False,
    **settings: Any,
) -> AsyncIterator[Harness]:
    """`start_planner`: a real planner too (its runs wait for executors that never come: give it a
    nats-server of its own, so that no other test's executor picks up its steps)."""
    home = tmp_path / "home"
    imports = tmp_path / "imports"
    imports.mkdir(exist_ok=True)
    common: dict[str, Any] = {
        "home": home,
        "database_url": f"sqlite+aiosqlite:///{home / 'artdag.db'}",
    }
    # The shared settings: a service's own fields, or a grouped one by its flat name (`l2_server`).
    common.update({k: v for k, v in settings.items() if k in CacheSettings.model_fields or k in NESTED})
    await migrate(common["database_url"])
    # No planner here to provision JetStream: an operator's login does it, as the planner would.
    provisioner = await connect(nats.url, "pytest-provision", login=nats.admin)
    try:
        await streams.provision(provisioner.jetstream())
    finally:
        await provisioner.close()
    runtimes: list[ServiceRuntime] = []
    if start_cache_service:
        cache_settings = CacheSettings(**common, **bus_settings(nats, "cache"))
        cache_runtime = ServiceRuntime("cache", cache_settings)
        await cache_runtime.open()
        runtimes.append(cache_runtime)
        await start_cache(cache_runtime, cache_settings)
    if start_planner:
        planner_settings = PlannerSettings(**common, **bus_settings(nats, "planner"))
        planner_runtime = ServiceRuntime("planner", planner_settings)
        await planner_runtime.open()
        runtimes.append(planner_runtime)
        await start_planner_service(planner_runtime, planner_settings)
    auth_settings = AuthSettings(**common, **bus_settings(nats, "auth"))
    auth_runtime = ServiceRuntime("auth", auth_settings)
    await auth_runtime.open()
    runtimes.append(auth_runtime)
    await start_auth(auth_runtime, auth_settings)
    gateway_settings: dict[str, Any] = {
        "import_dirs": str(imports),
        "max_upload_bytes": 1024 * 1024,
        "ipfs_gateway_url": "https://gw.example/",
        **settings,
    }
    app = create_app(GatewaySettings(**{**common, **bus_settings(nats, "gateway"), **gateway_settings}))
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as anonymous:
                # The tests' own bus client: an operator's login (issuing tokens takes admin rights).
                admin = await connect(nats.url, "pytest-harness", login=nats.admin)
                harness = Harness(client=anonymous, anonymous=anonymous, home=home, imports=imports, nc=admin, app=app)
                try:
                    if not settings.get("l2_server"):
                        for user, roles in (("alice", []), ("bob", []), ("root", ["admin"])):
                            harness.tokens[user] = await harness.issue(user, roles=roles)
                        harness.client = harness.as_user("alice")
                    yield harness
                finally:
                    for client in harness.extra:
                        await client.aclose()
                    await admin.close()
    finally:
        for runtime in reversed(runtimes):
            runtime.stopping.set()
            await runtime.close()
