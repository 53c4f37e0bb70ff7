"""IPFS: a redirect to the public IPFS gateway, and content fetched through this server's IPFS node."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from artdag_common.cid import validate_cid
from artdag_common.content_store.read_through import ReadThroughStore
from artdag_common.contracts import Cache
from artdag_common.errors import NotFoundError
from artdag_common.media_types import sniff_media_type
from artdag_common.schemas import CidRequest
from services.gateway import errors, files, openapi
from services.gateway.auth import OptionalUser
from services.gateway.deps import GatewayDep
from services.gateway.policy import visible_content

router = APIRouter()


@router.get(
    "/ipfs/{cid}",
    tags=["ipfs"],
    summary="Redirect to the public IPFS gateway (IPFS_GATEWAY_URL)",
    responses={
        **openapi.redirect(302, "The public IPFS gateway's address of the content"),
        **errors.responses(400, authenticated=False),
    },
)
async def ipfs_redirect(cid: str, gw: GatewayDep) -> RedirectResponse:
    base = gw.settings.ipfs_gateway_url
    if not base.endswith("/ipfs"):  # the original's default named the /ipfs path itself
        base += "/ipfs"
    return RedirectResponse(f"{base}/{validate_cid(cid)}", status_code=302)


@router.get(
    "/ipfs/{cid}/raw",
    tags=["ipfs"],
    summary="Fetch content through the IPFS node (verified)",
    responses={
        **openapi.binary("The content's bytes, checked against the cid", partial=False),
        **errors.responses(400, 404),
    },
)
async def ipfs_raw(cid: str, gw: GatewayDep, user: OptionalUser) -> Response:
    cid = validate_cid(cid)
    # In IPFS-primary mode the node is read, not the local copy in front of it: "through IPFS" is the point.
    node = gw.store.primary if isinstance(gw.store, ReadThroughStore) else gw.store
    if gw.settings.store.kind != "ipfs" and not gw.settings.store.ipfs_primary:
        raise NotFoundError(
            f"this server's content store is {gw.settings.store.kind!r}, not IPFS"
            f" (ARTDAG_STORE=ipfs or IPFS_PRIMARY=true): use /cache/{cid}/raw",
            field="cid",
        )
    # Everything this server stores is in its IPFS node: another user's private content stays "not found".
    try:
        await visible_content(gw, user, cid)
    except NotFoundError:
        try:
            await gw.call(Cache.stat, CidRequest(cid=cid))
        except NotFoundError:
            pass  # not this server's content: whatever IPFS has under that CID is public anyway
        else:
            raise NotFoundError(f"no content with cid {cid}", field="cid") from None
    spool = gw.settings.spool_dir
    spool.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="ipfs-raw-", dir=spool))
    try:
        # Fetched whole into scratch and checked against the cid before a byte is sent.
        path = await node.local_path(cid, scratch)
        head = await asyncio.to_thread(files.read_head, path)
        size = path.stat().st_size
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return StreamingResponse(
        files.file_chunks(path),
        media_type=sniff_media_type(head),
        headers={
            "Content-Length": str(size),
            "ETag": f'"{cid}"',
            "Cache-Control": "public, max-age=31536000, immutable",
        },
        background=BackgroundTask(shutil.rmtree, scratch, ignore_errors=True),
    )
