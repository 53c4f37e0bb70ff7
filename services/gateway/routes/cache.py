"""Content: upload, import, metadata, media listing, download with Range, deletion, publishing; and
the media derived from a video for browsers (a playable MP4, a thumbnail)."""

from __future__ import annotations

import asyncio
import os
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from markupsafe import Markup
from pydantic import BaseModel, ConfigDict, Field

from artdag_common.cid import validate_cid
from artdag_common.contracts import Analyzer, Cache, Planner
from artdag_common.errors import (
    InvalidInputError,
    InvalidMediaError,
    NotFoundError,
    PayloadTooLargeError,
)
from artdag_common.media_types import LOSSLESS_H264_PROFILE, SNIFF_BYTES, sniff_media_type
from artdag_common.restore import restore
from artdag_common.schemas import (
    CidRequest,
    ContentDeleted,
    ContentList,
    ContentLocations,
    ContentMeta,
    ContentMetaPatch,
    ContentMetaUpdate,
    ContentOrigin,
    ContentRecord,
    CopyRequest,
    DerivedKind,
    DeriveRequest,
    MediaInfo,
    MediaListRequest,
    Principal,
    Publication,
    PublishRequest,
    RunStatus,
    UsageReply,
    UsageRequest,
)
from services.gateway import errors, files, openapi
from services.gateway.auth import CurrentUser, OptionalUser
from services.gateway.deps import MULTIPART_OVERHEAD, Gateway, GatewayDep, Offset
from services.gateway.errors import error_body
from services.gateway.policy import viewer_of, visible_content
from services.gateway.ranges import parse_range
from services.gateway.ui.locations import section_for
from services.gateway.ui.negotiate import prefers_html
from services.gateway.ui.render import ENV
from services.gateway.uploads import receive_upload

router = APIRouter()


def _cid_param(cid: str) -> str:
    return validate_cid(cid)


# -- content ----------------------------------------------------------------------


@router.post(
    "/cache/upload",
    status_code=201,
    tags=["cache"],
    summary="Upload a file (multipart, field 'file')",
    responses=errors.responses(400, 413, 507),
    openapi_extra=openapi.multipart_body(
        {"file": {"type": "string", "format": "binary"}, "name": {"type": "string", "maxLength": 4096}}, ["file"]
    ),
)
async def upload(request: Request, gw: GatewayDep, user: CurrentUser) -> ContentRecord:
    gw.ensure_room("upload")
    limit = gw.settings.max_upload_bytes
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit + MULTIPART_OVERHEAD:
        raise PayloadTooLargeError(f"upload is larger than MAX_UPLOAD_BYTES ({limit} bytes)", field="file")
    room = await quota_room(gw, user)
    if room is not None and (
        room <= 0 or (length is not None and length.isdigit() and int(length) > room + MULTIPART_OVERHEAD)
    ):
        raise over_quota(gw, user, room)
    cap = limit if room is None else min(limit, room)
    try:
        result = await receive_upload(request.stream(), request.headers.get("content-type", ""), gw.store, cap)
    except PayloadTooLargeError:
        if room is not None and cap == room:
            raise over_quota(gw, user, room) from None
        raise
    name = shortened(result.fields.get("name") or result.filename or "", 512) or None
    return await _register_brought_in(gw, result.cid, result.size, result.head, name, ContentOrigin.UPLOAD, user)


async def quota_room(gw: Gateway, user: Principal) -> int | None:
    """The bytes `user` may still bring in under ARTDAG_QUOTA_BYTES (what they hold counts); None: no quota.

    Checked before a byte is stored; the cache checks again as it registers the content."""
    if not gw.settings.quota_bytes or user.user is None:
        return None
    usage: UsageReply = await gw.call(Cache.usage, UsageRequest(user=user.user))
    return gw.settings.quota_bytes - usage.bytes


def over_quota(gw: Gateway, user: Principal, room: int) -> PayloadTooLargeError:
    """413: the upload would take `user` past their storage quota."""
    return PayloadTooLargeError(
        f"over the storage quota of {gw.settings.quota_bytes:,} bytes (ARTDAG_QUOTA_BYTES): {user.user} has "
        f"{max(room, 0):,} bytes left; delete some content first",
        field="quota_bytes",
    )


async def _import_file(gw: Gateway, raw: str, user: Principal) -> ContentRecord:
    room = await quota_room(gw, user)
    fd, real = await asyncio.to_thread(files.open_importable, raw, gw.settings.import_dirs_as_written)
    head = b""
    try:
        if room is not None and os.fstat(fd).st_size > room:
            raise over_quota(gw, user, room)
        writer = gw.store.writer()
        async with writer:
            while chunk := await asyncio.to_thread(os.read, fd, files.CHUNK):
                if len(head) < SNIFF_BYTES:
                    head += chunk[: SNIFF_BYTES - len(head)]
                await writer.write(chunk)
            size = writer.size
            cid = await writer.commit()
    finally:
        os.close(fd)
    return await _register_brought_in(gw, cid, size, head, real.name[:512] or None, ContentOrigin.IMPORT, user)


async def _register_brought_in(
    gw: Gateway, cid: str, size: int, head: bytes, name: str | None, origin: ContentOrigin, user: Principal
) -> ContentRecord:
    """Register what a user brought in (its bytes already stored): theirs, typed by its first bytes."""
    record = ContentRecord(
        cid=cid, size=size, media_type=sniff_media_type(head), name=name, origin=origin, owner=user.user
    )
    return await gw.call(Cache.register, record)


@router.post(
    "/cache/import",
    status_code=201,
    tags=["cache"],
    summary="Import a file from the server's IMPORT_DIRS",
    responses=errors.responses(400, 404, 413, 507),
)
async def import_file(gw: GatewayDep, user: CurrentUser, path: Annotated[str, Query(max_length=4096)]) -> ContentRecord:
    gw.ensure_room("import")
    return await _import_file(gw, path, user)


@router.get(
    "/media",
    tags=["cache"],
    summary="Your content and published content, newest first (?type=video)",
    responses=errors.responses(),
)
async def list_media(
    gw: GatewayDep,
    user: OptionalUser,
    media_type: Annotated[str | None, Query(alias="type", max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    try:
        request = MediaListRequest(media_type=media_type or None, limit=limit, offset=offset, viewer=viewer_of(user))
    except ValueError:
        raise InvalidInputError("a media type is like 'video' or 'image/png'", field="type") from None
    found: ContentList = await gw.call(Cache.list, request)
    body = found.model_dump(mode="json")
    for item in body["items"]:
        item["thumbnail"] = _thumbnail_url(item["cid"], item["media_type"])
    return body


def _thumbnail_url(cid: str, media_type: str) -> str | None:
    """Where a gallery finds a still: videos get one made (once per cid), images are their own."""
    if media_type.startswith("video/"):
        return f"/cache/{cid}/thumbnail"
    if media_type.startswith("image/"):
        return f"/cache/{cid}/raw"
    return None


# A derived file (browser MP4, thumbnail) is a run the planner makes once per cid (`planner.derive`).
# A signed-in request has it made; anonymous requests only ever find it. A request waits this long
# for it, then answers 202.
DERIVE_WAIT_S = 60.0


async def _derived(
    gw: Gateway, cid: str, kind: DerivedKind, range_header: str | None, user: Principal | None
) -> Response:
    """Serve `kind` of `cid` from its stored cid once made; a signed-in request has it made (once)."""
    derived = await gw.call(Planner.derive, DeriveRequest(cid=cid, kind=kind))
    if derived.status is None and user is not None:
        gw.ensure_room("a new run")  # 507 rather than a run that cannot store what it makes
    if user is not None and not (derived.status and derived.status.finished):
        wanted = DeriveRequest(cid=cid, kind=kind, make=True, wait_s=DERIVE_WAIT_S)
        derived = await gw.call(Planner.derive, wanted, timeout_s=DERIVE_WAIT_S + gw.settings.rpc_timeout_s)
    if derived.status is None:
        raise NotFoundError(f"no {kind} of {cid} has been made yet", field="cid")
    if derived.status == RunStatus.COMPLETED and derived.output_cid:
        # Served here rather than redirected: whoever may see the source may see what is made of it.
        made = await gw.call(Cache.access, CidRequest(cid=derived.output_cid))
        return await _raw_response(gw, made, range_header)
    if derived.status.finished:
        raise InvalidMediaError(derived.error or "could not be converted")
    return JSONResponse(
        {"run_id": derived.run_id, "status": derived.status}, status_code=202, headers={"Retry-After": "2"}
    )


async def _video_record(gw: Gateway, cid: str, user: Principal | None) -> ContentRecord:
    record = await visible_content(gw, user, cid)
    if not record.media_type.startswith("video/"):
        raise InvalidMediaError(f"{cid} is {record.media_type}, not a video")
    return record


@router.get(
    "/cache/{cid}/mp4",
    tags=["cache"],
    summary="A browser-playable MP4 of a video (made once, then cached)",
    responses={
        **openapi.binary("The video as a browser-playable MP4"),
        **openapi.accepted("Being made"),
        **openapi.redirect(302, "The original is browser-playable as it is (or none is made yet)"),
        **errors.responses(400, 404, 416, 507),
    },
)
async def content_mp4(
    cid: str,
    gw: GatewayDep,
    user: OptionalUser,
    range_header: Annotated[str | None, Header(alias="range")] = None,
) -> Response:
    record = await _video_record(gw, cid, user)
    info: MediaInfo = await gw.call(Analyzer.probe, CidRequest(cid=record.cid))
    # Lossless intermediates (H.264 4:4:4 Predictive, FLAC) are made playable by one delivery encode.
    browser_h264 = info.video_codec == "h264" and info.video_profile != LOSSLESS_H264_PROFILE
    if record.media_type == "video/mp4" and browser_h264 and info.audio_codec in (None, "aac"):
        return RedirectResponse(f"/cache/{record.cid}/raw", status_code=302)
    if user is None:
        found = await gw.call(Planner.derive, DeriveRequest(cid=record.cid, kind="mp4"))
        if found.status is None:
            return RedirectResponse(f"/cache/{record.cid}/raw", status_code=302)  # the original, until one is made
    return await _derived(gw, record.cid, "mp4", range_header, user)


@router.get(
    "/cache/{cid}/thumbnail",
    tags=["cache"],
    summary="A PNG still of a video (made once, then cached)",
    responses={
        **openapi.binary("A PNG still"),
        **openapi.accepted("Being made"),
        **errors.responses(400, 404, 416, 507),
    },
)
async def content_thumbnail(
    cid: str,
    gw: GatewayDep,
    user: OptionalUser,
    range_header: Annotated[str | None, Header(alias="range")] = None,
) -> Response:
    record = await _video_record(gw, cid, user)
    return await _derived(gw, record.cid, "thumbnail", range_header, user)


def content_page(record: ContentRecord, locations: str = "") -> str:
    """A small server-rendered page: a preview of the content, its metadata and (`locations`, HTML) its copies."""
    return ENV.get_template("content.html").render(record=record, locations=Markup(locations))


@router.get(
    "/cache/{cid}",
    tags=["cache"],
    summary="Content: JSON metadata, or an HTML preview for browsers",
    responses={
        200: {
            "model": ContentRecord,
            "description": "Metadata, or a preview page for a browser (Accept: text/html)",
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
        **errors.responses(400, 404),
    },
)
async def content(
    cid: str, request: Request, gw: GatewayDep, user: OptionalUser, accept: Annotated[str | None, Header()] = None
) -> Any:
    record = await visible_content(gw, user, cid)
    if prefers_html(accept):
        return HTMLResponse(
            content_page(record, await section_for(request, gw, user, record)),
            headers={
                "Content-Security-Policy": "default-src 'none'; media-src 'self'; img-src 'self'; "
                "style-src 'unsafe-inline'; frame-ancestors 'none'",
                "Vary": "Accept",
            },
        )
    return JSONResponse(record.model_dump(mode="json"), headers={"Vary": "Accept"})


@router.get(
    "/cache/{cid}/meta",
    tags=["cache"],
    summary="Content metadata (with its provenance record's cid) and where its bytes are kept",
    responses=errors.responses(400, 404),
)
async def content_meta(cid: str, gw: GatewayDep, user: OptionalUser) -> ContentMeta:
    record = await visible_content(gw, user, cid)
    found = await _locations(gw, record.cid, user)
    return ContentMeta(**record.model_dump(), local=found.local, locations=found.locations)


async def _locations(gw: Gateway, cid: str, user: Principal | None) -> ContentLocations:
    request = CidRequest(cid=_cid_param(cid), viewer=viewer_of(user))
    found: ContentLocations = await gw.call(Cache.locations, request)
    return found


@router.get(
    "/cache/{cid}/locations",
    tags=["cache"],
    summary="Where the content is kept: the local store, and its copies at your storage providers",
    responses=errors.responses(400, 404),
)
async def content_locations(cid: str, gw: GatewayDep, user: OptionalUser) -> ContentLocations:
    return await _locations(gw, cid, user)


class CopyBody(BaseModel):
    """`POST /cache/{cid}/locations`: which of your providers gets a copy (your default one if omitted)."""

    model_config = ConfigDict(extra="forbid")

    provider_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$", description="a provider id")


@router.post(
    "/cache/{cid}/locations",
    tags=["cache"],
    summary="Copy content you hold to one of your storage providers (made in the background)",
    status_code=202,
    responses=errors.responses(400, 401, 404, 422),
)
async def copy_to_provider(
    cid: str, gw: GatewayDep, user: CurrentUser, body: CopyBody | None = None
) -> ContentLocations:
    request = CopyRequest(cid=_cid_param(cid), provider_id=body.provider_id if body else None, viewer=user.viewer())
    found: ContentLocations = await gw.call(Cache.copy, request)
    return found


@router.patch(
    "/cache/{cid}/meta",
    tags=["cache"],
    summary="Change name, description, tags or the pin",
    responses=errors.responses(400, 404),
)
async def patch_meta(cid: str, patch: ContentMetaPatch, gw: GatewayDep, user: CurrentUser) -> ContentRecord:
    request = ContentMetaUpdate(cid=_cid_param(cid), patch=patch, viewer=user.viewer())
    record: ContentRecord = await gw.call(Cache.update_meta, request)
    return record


@router.delete(
    "/cache/{cid}",
    tags=["cache"],
    summary="Delete content no run, pin or publication keeps",
    responses=errors.responses(400, 404, 409),
)
async def delete_content(cid: str, gw: GatewayDep, user: CurrentUser) -> ContentDeleted:
    request = CidRequest(cid=_cid_param(cid), viewer=user.viewer())
    deleted: ContentDeleted = await gw.call(Cache.delete, request)
    return deleted


@router.post(
    "/cache/{cid}/publish",
    tags=["cache"],
    summary="Publish your content to L2 (an ActivityPub Create)",
    responses=errors.responses(400, 404, 409),
)
async def publish(cid: str, gw: GatewayDep, user: CurrentUser) -> Publication:
    request = PublishRequest(cid=_cid_param(cid), viewer=user.viewer())
    # Delivery to L2's inbox may take a while: give it L2's timeout on top of the usual.
    published: Publication = await gw.call(
        Cache.publish, request, timeout_s=gw.settings.rpc_timeout_s + gw.settings.auth.l2_timeout_s
    )
    return published


@router.get(
    "/cache/{cid}/raw",
    tags=["cache"],
    summary="Download raw content (honours Range)",
    responses={**openapi.binary("The content's bytes"), **errors.responses(400, 404, 416)},
)
async def content_raw(
    cid: str,
    gw: GatewayDep,
    user: OptionalUser,
    range_header: Annotated[str | None, Header(alias="range")] = None,
) -> Response:
    record = await visible_content(gw, user, cid, Cache.access)
    return await _raw_response(gw, record, range_header)


NAME_CHARS = 200


def shortened(name: str, limit: int) -> str:
    """`name` cut to `limit` characters, keeping its extension (`….mp4`)."""
    if len(name) <= limit:
        return name
    stem, dot, ext = name.rpartition(".")
    keep = len(ext) + 1 if dot and stem and len(ext) <= 16 else 0
    return name[: limit - keep] + (name[-keep:] if keep else "")


def content_disposition(name: str, fallback: str, kind: str = "inline") -> str:
    """`inline; filename="…"; filename*=UTF-8''…` (RFC 6266, RFC 5987): the name as it is for clients
    that read `filename*`, an ASCII stand-in for the rest; never a character a header cannot carry."""
    name = shortened("".join(ch for ch in name if ch.isprintable() and ch not in '"\\/'), NAME_CHARS)
    plain = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "._- ") else "_" for ch in name).strip()
    if not plain.strip("_. "):
        plain = fallback
    if not name:
        return f'{kind}; filename="{plain}"'
    return f"{kind}; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"


async def _raw_response(gw: Gateway, record: ContentRecord, range_header: str | None) -> Response:
    cid = record.cid
    try:
        size = await gw.store.size(record.cid)
    except NotFoundError:
        # Given up to a storage provider to make room (or never here, on a fresh node): read it back.
        try:
            await restore(gw.runtime.nc, cid)
            size = await gw.store.size(record.cid)
        except NotFoundError:
            raise NotFoundError(
                f"content {cid} is known but its bytes are missing from the store and its providers", field="cid"
            ) from None
    try:
        span = parse_range(range_header, size)
    except InvalidInputError as exc:
        return JSONResponse(
            error_body(exc.code, exc.message, exc.field), status_code=416, headers={"Content-Range": f"bytes */{size}"}
        )
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": f'"{record.cid}"',
        # Private content must not sit in shared caches.
        "Cache-Control": ("public" if record.published else "private") + ", max-age=31536000, immutable",
    }
    if record.name:
        headers["Content-Disposition"] = content_disposition(record.name, record.cid)
    if span is None:
        headers["Content-Length"] = str(size)
        return StreamingResponse(gw.store.read(record.cid), media_type=record.media_type, headers=headers)
    start, end = span
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(end - start + 1)
    return StreamingResponse(
        gw.store.read(record.cid, start, end), status_code=206, media_type=record.media_type, headers=headers
    )
