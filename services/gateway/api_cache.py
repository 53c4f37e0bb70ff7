"""REST routes for content: upload, metadata, download with Range."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from artdag_common.cid import validate_cid
from artdag_common.errors import InvalidInputError, NotFoundError, PayloadTooLargeError
from artdag_common.media_types import sniff_media_type
from artdag_common.schemas import CidRequest, ContentOrigin, ContentRecord
from services.gateway.deps import MULTIPART_OVERHEAD, GatewayDep
from services.gateway.ranges import parse_range
from services.gateway.uploads import receive_upload

router = APIRouter()


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
