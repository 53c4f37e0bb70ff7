"""REST routes: content, runs, health. Each handler validates, asks a service, answers."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from artdag_common import __version__, rpc, subjects
from artdag_common.cid import validate_cid
from artdag_common.content_store import ContentStore
from artdag_common.errors import ArtdagError, InvalidInputError, NotFoundError, PayloadTooLargeError
from artdag_common.ids import check_run_id
from artdag_common.media_types import sniff_media_type
from artdag_common.runtime import ServiceRuntime
from artdag_common.schemas import (
    AnalysisReply,
    AnalyzeRequest,
    CidRequest,
    ContentOrigin,
    ContentRecord,
    HealthReply,
    HealthRequest,
    ListRunsRequest,
    Plan,
    RunList,
    RunRequest,
    RunState,
    SubmitRunReply,
    SubmitRunRequest,
)
from services.gateway.ranges import parse_range
from services.gateway.settings import GatewaySettings
from services.gateway.uploads import receive_upload

router = APIRouter()

# Multipart framing around the file: allowed on top of MAX_UPLOAD_BYTES before refusing early.
MULTIPART_OVERHEAD = 64 * 1024
# An hour of audio analyzes in well under a minute; this is the ceiling for a request.
ANALYZE_TIMEOUT_S = 600.0


class Gateway:
    """What the routes share: the bus runtime, the store, the settings."""

    def __init__(self, runtime: ServiceRuntime, store: ContentStore, settings: GatewaySettings) -> None:
        self.runtime = runtime
        self.store = store
        self.settings = settings

    async def call(self, service: str, verb: str, request: BaseModel, reply: type[Any]) -> Any:
        return await rpc.call(self.runtime.nc, service, verb, request, reply, timeout_s=self.settings.rpc_timeout_s)


def gateway(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


GatewayDep = Annotated[Gateway, Depends(gateway)]


def _cid_param(cid: str) -> str:
    return validate_cid(cid)


# -- content ----------------------------------------------------------------------


@router.post("/cache/upload", status_code=201, tags=["cache"], summary="Upload a file (multipart, field 'file')")
async def upload(request: Request, gw: GatewayDep) -> ContentRecord:
    limit = gw.settings.max_upload_bytes
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit + MULTIPART_OVERHEAD:
        raise PayloadTooLargeError(f"upload is larger than MAX_UPLOAD_BYTES ({limit} bytes)", field="file")
    result = await receive_upload(request.stream(), request.headers.get("content-type", ""), gw.store, limit)
    name = (result.fields.get("name") or result.filename or "")[:512] or None
    record = ContentRecord(
        cid=result.cid,
        size=result.size,
        media_type=sniff_media_type(result.head),
        name=name,
        origin=ContentOrigin.UPLOAD,
    )
    registered: ContentRecord = await gw.call("cache", "register", record, ContentRecord)
    return registered


@router.get("/cache/{cid}/meta", tags=["cache"], summary="Content metadata")
async def content_meta(cid: str, gw: GatewayDep) -> ContentRecord:
    record: ContentRecord = await gw.call("cache", "stat", CidRequest(cid=_cid_param(cid)), ContentRecord)
    return record


@router.get("/cache/{cid}/raw", tags=["cache"], summary="Download raw content (honours Range)")
async def content_raw(
    cid: str, gw: GatewayDep, range_header: Annotated[str | None, Header(alias="range")] = None
) -> Response:
    record: ContentRecord = await gw.call("cache", "stat", CidRequest(cid=_cid_param(cid)), ContentRecord)
    try:
        size = await gw.store.size(record.cid)
    except NotFoundError:
        raise NotFoundError(f"content {cid} is known but its bytes are missing from the store", field="cid") from None
    try:
        span = parse_range(range_header, size)
    except InvalidInputError as exc:
        return JSONResponse({"detail": exc.message}, status_code=416, headers={"Content-Range": f"bytes */{size}"})
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": f'"{record.cid}"',
        "Cache-Control": "public, max-age=31536000, immutable",
    }
    if record.name:
        safe = "".join(ch for ch in record.name if ch.isalnum() or ch in "._- ")[:128] or record.cid
        headers["Content-Disposition"] = f'inline; filename="{safe}"'
    if span is None:
        headers["Content-Length"] = str(size)
        return StreamingResponse(gw.store.read(record.cid), media_type=record.media_type, headers=headers)
    start, end = span
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(end - start + 1)
    return StreamingResponse(
        gw.store.read(record.cid, start, end), status_code=206, media_type=record.media_type, headers=headers
    )


# -- runs --------------------------------------------------------------------------


class RunBody(BaseModel):
    recipe: str = Field(description="the recipe's YAML text", max_length=4 * 1024 * 1024)
    inputs: dict[str, str] = Field(default_factory=dict, description="recipe input name → content cid")


@router.post("/runs", status_code=202, tags=["runs"], summary="Start a rendering run")
async def submit_run(body: Annotated[RunBody, Body()], gw: GatewayDep) -> SubmitRunReply:
    if len(body.recipe.encode()) > gw.settings.max_recipe_bytes:
        raise PayloadTooLargeError(f"recipe is larger than {gw.settings.max_recipe_bytes} bytes", field="recipe")
    reply: SubmitRunReply = await gw.call(
        "planner", "submit", SubmitRunRequest(recipe=body.recipe, inputs=body.inputs), SubmitRunReply
    )
    return reply


@router.get("/runs", tags=["runs"], summary="List runs, newest first")
async def list_runs(
    gw: GatewayDep, limit: Annotated[int, Query(ge=1, le=500)] = 50, offset: Annotated[int, Query(ge=0)] = 0
) -> RunList:
    runs: RunList = await gw.call("planner", "list_runs", ListRunsRequest(limit=limit, offset=offset), RunList)
    return runs


async def _run(run_id: str, gw: Gateway) -> dict[str, Any]:
    state: RunState = await gw.call("planner", "get_run", RunRequest(run_id=check_run_id(run_id)), RunState)
    body = state.model_dump(mode="json")
    body["progress"] = state.progress
    return body


@router.get("/runs/{run_id}", tags=["runs"], summary="Run status, steps and output")
async def get_run(run_id: str, gw: GatewayDep) -> dict[str, Any]:
    return await _run(run_id, gw)


@router.get("/api/run/{run_id}", tags=["runs"], summary="Run as JSON (original L1 path)")
async def get_run_api(run_id: str, gw: GatewayDep) -> dict[str, Any]:
    return await _run(run_id, gw)


@router.get("/api/run/{run_id}/plan", tags=["runs"], summary="The run's execution plan: steps and cache ids")
async def get_plan(run_id: str, gw: GatewayDep) -> Plan:
    plan: Plan = await gw.call("planner", "get_plan", RunRequest(run_id=check_run_id(run_id)), Plan)
    return plan


# -- analysis -----------------------------------------------------------------------


class AnalyzeBody(BaseModel):
    cid: str = Field(description="the content to analyze")
    features: list[str] = Field(min_length=1, max_length=16, description="e.g. beats, energy, spectrum, onsets")
    params: dict[str, Any] = Field(default_factory=dict, description="analyzer parameters (window_ms, bands, …)")


@router.post("/api/analyze", tags=["analysis"], summary="Analyze content: tempo, beats, energy, scenes, motion…")
async def analyze(body: AnalyzeBody, gw: GatewayDep) -> AnalysisReply:
    request = AnalyzeRequest(cid=validate_cid(body.cid), features=body.features, params=body.params)
    await gw.call("cache", "stat", CidRequest(cid=request.cid), ContentRecord)  # 404 for unknown content
    reply: AnalysisReply = await rpc.call(
        gw.runtime.nc, "analyzer", "analyze", request, AnalysisReply, timeout_s=ANALYZE_TIMEOUT_S
    )
    return reply


# -- system ---------------------------------------------------------------------------


@router.get("/health", tags=["system"], summary="Each service's health, answered over NATS, and the bus")
async def health(gw: GatewayDep) -> JSONResponse:
    nc = gw.runtime.nc
    server = nc.connected_url.netloc if nc.connected_url else None
    bus: dict[str, Any] = {"connected": nc.is_connected, "server": server}
    try:
        info = await gw.runtime.js.account_info()
        bus["jetstream"] = {"streams": info.streams, "consumers": info.consumers}
        bus["ok"] = nc.is_connected
    except Exception as exc:  # noqa: BLE001 - reported, not raised: this is the health check
        bus["ok"] = False
        bus["error"] = str(exc)

    async def ask(service: str) -> dict[str, Any]:
        try:
            reply: HealthReply = await rpc.call(
                nc, service, "health", HealthRequest(), HealthReply, timeout_s=gw.settings.health_timeout_s
            )
            return reply.model_dump(mode="json")
        except ArtdagError as exc:
            return {"service": service, "ok": False, "error": exc.message}

    replies = await asyncio.gather(*(ask(s) for s in subjects.SERVICES))
    services = {r["service"]: r for r in replies}
    ok = bool(bus["ok"]) and all(r.get("ok") for r in replies)
    return JSONResponse(
        {"ok": ok, "version": __version__, "bus": bus, "services": services}, status_code=200 if ok else 503
    )


@router.get("/", tags=["system"], summary="Server info and links")
async def home(gw: GatewayDep) -> dict[str, Any]:
    return {
        "name": "artdag",
        "version": __version__,
        "docs": "/docs",
        "links": {"runs": "/runs", "health": "/health", "upload": "/cache/upload"},
    }
