"""The system: Kubernetes probes, the health of every service, this L1's ActivityPub actor, server info."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field

from artdag_common import __version__, subjects
from artdag_common.contracts import Cache, health_of
from artdag_common.disk import lowest_free
from artdag_common.errors import ArtdagError
from artdag_common.schemas import HealthRequest, L1Keys, L1KeysRequest, Principal
from services.gateway import errors
from services.gateway.auth import OptionalUser
from services.gateway.deps import Gateway, GatewayDep

# Kubernetes probes on the API port: ready = HTTP up and connected to NATS (not: every service healthy).
probes = APIRouter()
router = APIRouter()


@probes.get("/livez", include_in_schema=False)
async def livez() -> PlainTextResponse:
    return PlainTextResponse("ok\n")


@probes.get("/readyz", include_in_schema=False)
async def readyz(request: Request) -> PlainTextResponse:
    gw: Gateway | None = getattr(request.app.state, "gateway", None)
    reason = "starting" if gw is None else gw.runtime.not_ready()
    return PlainTextResponse("ready\n" if reason is None else f"{reason}\n", status_code=200 if reason is None else 503)


class HealthReport(BaseModel):
    """`GET /health`: whether the stack is up; the details (bus, disk, each service) only for admins."""

    ok: bool = Field(description="every service answers and the bus is connected")
    degraded: list[str] = Field(default_factory=list, description="what works only in part (disk: short of room)")
    version: str | None = None
    bus: dict[str, Any] | None = None
    disk: dict[str, Any] | None = None
    services: dict[str, Any] | None = None


def _health_answer(report: dict[str, Any], user: Principal | None) -> JSONResponse:
    ok = bool(report["ok"])
    shown = report if user is not None and user.admin else {"ok": ok, "degraded": report.get("degraded", [])}
    return JSONResponse(
        HealthReport.model_validate(shown).model_dump(mode="json", exclude_unset=True),
        status_code=200 if ok else 503,
        # A service not answering yet (restarting, reconnecting) is worth asking again shortly.
        headers=None if ok else {"Retry-After": str(errors.RETRY_AFTER_S)},
    )


@router.get(
    "/health",
    tags=["system"],
    summary="Whether every service and the bus answer (details for admins)",
    responses={
        **errors.responses(),
        503: {
            "model": HealthReport | errors.ErrorBody,
            "description": "Something is down: try again after `Retry-After` seconds.",
            "headers": errors.RETRY_AFTER_HEADER,
        },
    },
)
async def health(gw: GatewayDep, user: OptionalUser) -> JSONResponse:
    path, free = lowest_free(gw.disk_paths())
    reserve = gw.settings.min_free_bytes
    disk = {"path": str(path), "free_bytes": free, "reserve_bytes": reserve, "ok": free >= reserve}
    # Short of disk the stack is degraded, not down: it still serves reads and deletions, which
    # is how room is made again, while uploads and new runs are refused (507).
    degraded = [] if disk["ok"] else ["disk"]
    nc = gw.runtime.nc
    server = nc.connected_url.netloc if nc.connected_url else None
    bus: dict[str, Any] = {"connected": nc.is_connected, "server": server}
    if not nc.is_connected:
        # No bus, no services to ask: say so at once rather than after every question times out.
        bus.update(ok=False, error="not connected to NATS (reconnecting)")
        report = {"ok": False, "degraded": degraded, "version": __version__, "bus": bus, "disk": disk, "services": {}}
        return _health_answer(report, user)
    try:
        info = await gw.runtime.js.account_info()
        bus["jetstream"] = {"streams": info.streams, "consumers": info.consumers}
        bus["ok"] = nc.is_connected
    except Exception as exc:  # noqa: BLE001 - reported, not raised: this is the health check
        bus["ok"] = False
        bus["error"] = f"JetStream did not answer ({type(exc).__name__})"

    async def ask(service: str) -> dict[str, Any]:
        try:
            reply = await gw.call(health_of(service), HealthRequest(), timeout_s=gw.settings.health_timeout_s)
            return reply.model_dump(mode="json")
        except ArtdagError as exc:
            return {"service": service, "ok": False, "error": exc.message}

    replies = await asyncio.gather(*(ask(s) for s in subjects.SERVICES))
    services = {r["service"]: r for r in replies}
    ok = bool(bus["ok"]) and all(r.get("ok") for r in replies)
    report = {"ok": ok, "degraded": degraded, "version": __version__, "bus": bus, "disk": disk, "services": services}
    return _health_answer(report, user)


@router.get(
    "/actor",
    tags=["system"],
    summary="This L1 as an ActivityPub actor: its public keys",
    responses={
        200: {"description": "The actor", "content": {"application/activity+json": {"schema": {"type": "object"}}}},
        **errors.responses(authenticated=False),
    },
)
async def actor(gw: GatewayDep) -> JSONResponse:
    keys: L1Keys = await gw.call(Cache.keys, L1KeysRequest())
    base = gw.settings.auth.public_url or f"http://{gw.settings.host}:{gw.settings.port}"
    body = {
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
        "id": f"{base}/actor",
        "type": "Application",
        "preferredUsername": "artdag",
        "name": "artdag L1",
        # No inbox: an L1 takes no deliveries (it publishes to its L2, which holds the social side), and an
        # advertised inbox that answers 404 would have servers retry deliveries into nothing.
        "publicKey": {"id": f"{base}/actor#main-key", "owner": f"{base}/actor", "publicKeyPem": keys.rsa_public_pem},
        "artdag:provenanceKey": {
            "type": "Ed25519",
            "id": keys.ed25519_key_id,
            "publicKeyBase64": keys.ed25519_public,
        },
    }
    return JSONResponse(body, media_type="application/activity+json")


@router.get("/", tags=["system"], summary="Server info and links", responses=errors.responses(authenticated=False))
async def home(gw: GatewayDep) -> dict[str, Any]:
    return {
        "name": "artdag",
        "version": __version__,
        "docs": "/docs",
        "links": {"runs": "/runs", "health": "/health", "upload": "/cache/upload"},
    }
