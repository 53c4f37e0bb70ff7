"""Where a piece of content is kept: the "Stored at" section of its page (`/cache/{cid}`), and the form
action that copies it to one of the viewer's storage providers.

The section is plain HTML with no script, because the content page runs none: its form posts as an
ordinary form (carrying the CSRF token) and the action answers with a redirect back to the page; sent
by HTMX instead (from a page of the UI), the action answers with the refreshed section.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from artdag_common.cid import validate_cid
from artdag_common.contracts import Cache
from artdag_common.errors import ArtdagError, InvalidInputError
from artdag_common.schemas import (
    CidRequest,
    ContentLocations,
    ContentRecord,
    CopyRequest,
    Principal,
    StorageListRequest,
    StorageProviderList,
    StorageProviderRecord,
)
from services.gateway.auth import CSRF_COOKIE, CurrentUser
from services.gateway.deps import Gateway, GatewayDep
from services.gateway.errors import status_for
from services.gateway.ui.render import ENV, render
from services.gateway.uploads import read_form

router = APIRouter(include_in_schema=False)

PROVIDER_ID = re.compile(r"[0-9a-f]{32}")

# Inline, because the content page loads no stylesheet of the UI.
STATE_STYLES = {
    "stored": "background:#e7f7ee;color:#065f46",
    "pending": "background:#e8f1ff;color:#1d4ed8",
    "failed": "background:#fdecea;color:#912018",
    "removing": "background:#f2f4f7;color:#475467",
}
_BADGE = "display:inline-block;padding:.1rem .55rem;border-radius:999px;font-size:.8rem;font-weight:600;"
FLASH_STYLES = {
    True: "padding:.5rem .8rem;border-radius:8px;background:#e7f7ee;color:#065f46",
    False: "padding:.5rem .8rem;border-radius:8px;background:#fdecea;color:#912018",
}
NOTE_STYLE = "padding:.5rem .8rem;border-radius:8px;background:#fffaeb;color:#93370d"


def locations_section(
    cid: str,
    locations: ContentLocations | None,
    providers: list[StorageProviderRecord],
    *,
    csrf_token: str | None = None,
    message: str | None = None,
    ok: bool = True,
) -> str:
    """The "Stored at" section of a content page, as escaped HTML: each copy at a provider with its
    state, a note when the local store no longer holds the bytes, and a "Copy to provider" form.

    `locations` None: they could not be looked up (the section says so). `providers`: the copy
    targets the form offers, the viewer's own (see `own_providers`); empty, no form. `csrf_token`:
    the `artdag_csrf` cookie's value, which a plain form must carry (pages of the UI send it as a
    header instead). `message`: a flash above the table, `ok` or not.
    """
    held = {loc.provider_id: loc.state for loc in locations.locations} if locations is not None else {}
    return ENV.get_template("_locations.html").render(
        cid=cid,
        locations=locations,
        providers=providers,
        held=held,
        csrf_token=csrf_token,
        message=message,
        ok=ok,
        state_styles={state: _BADGE + style for state, style in STATE_STYLES.items()},
        flash_styles=FLASH_STYLES,
        note_style=NOTE_STYLE,
    )


def provider_choice(form: Mapping[str, str]) -> str | None:
    """The provider id a copy form names; None when it names none (the cache then picks the viewer's
    default provider)."""
    value = form.get("provider_id", "").strip().lower()
    if not value:
        return None
    if not PROVIDER_ID.fullmatch(value):
        raise InvalidInputError("not a storage provider id (expected 32 hex digits)", field="provider_id")
    return value


async def own_providers(gw: Gateway, user: Principal | None) -> list[StorageProviderRecord]:
    """The providers `user` owns: what content may be copied to. Never another user's, an admin's
    list included (an admin sees every provider on the storage page)."""
    if user is None:
        return []
    found: StorageProviderList = await gw.call(Cache.storage_list, StorageListRequest(viewer=user.viewer()))
    return [p for p in found.providers if p.owner == user.user]


async def locations_of(gw: Gateway, user: Principal, cid: str) -> ContentLocations | None:
    """Where `cid` is kept, as the cache tells `user`; None when it cannot say (not the user's, or no answer)."""
    try:
        found: ContentLocations = await gw.call(Cache.locations, CidRequest(cid=cid, viewer=user.viewer()))
    except ArtdagError:
        return None
    return found


async def section_for(request: Request, gw: Gateway, user: Principal | None, record: ContentRecord) -> str:
    """The whole section for `record`'s page as `user` sees it: nothing for a visitor who does not
    own it (an anonymous one, or another user: where it is kept is its owner's business; admins see it;
    others who hold it too see their copies with `GET /cache/{cid}/locations`)."""
    if user is None or not user.viewer().may_see(record.owner):
        return ""
    locations, providers = await asyncio.gather(locations_of(gw, user, record.cid), own_providers(gw, user))
    return locations_section(record.cid, locations, providers, csrf_token=request.cookies.get(CSRF_COOKIE))


async def _section(
    request: Request,
    gw: Gateway,
    user: Principal,
    found: ContentLocations | None,
    cid: str,
    status: int,
    message: str | None = None,
    ok: bool = True,
    providers: list[StorageProviderRecord] | None = None,
) -> HTMLResponse:
    if providers is None:
        providers = await own_providers(gw, user)
    token = request.cookies.get(CSRF_COOKIE)
    body = locations_section(cid, found, providers, csrf_token=token, message=message, ok=ok)
    return HTMLResponse(body, status_code=status, headers={"Vary": "HX-Request, Cookie", "Cache-Control": "no-store"})


@router.get("/ui/media/{cid}/locations")
async def locations_fragment(request: Request, cid: str, gw: GatewayDep, user: CurrentUser) -> HTMLResponse:
    """The section again (HTMX polls it while a copy is under way)."""
    query = CidRequest(cid=validate_cid(cid), viewer=user.viewer())
    try:
        found: ContentLocations = await gw.call(Cache.locations, query)
    except ArtdagError as exc:  # deleted meanwhile, say: the section says it cannot tell, and stops polling
        return await _section(request, gw, user, None, query.cid, status_for(exc), exc.message, ok=False)
    return await _section(request, gw, user, found, query.cid, 200)


@router.post("/ui/media/{cid}/copy")
async def copy_to_provider(request: Request, cid: str, gw: GatewayDep, user: CurrentUser) -> Response:
    by_htmx = request.headers.get("hx-request") == "true"
    try:
        form = await read_form(request.stream(), request.headers.get("content-type", ""))
        copy = CopyRequest(cid=validate_cid(cid), provider_id=provider_choice(form), viewer=user.viewer())
        copied: ContentLocations = await gw.call(Cache.copy, copy)
    except ArtdagError as exc:
        if not by_htmx:
            raise  # a plain form: the error page, which names the field
        text = f"{exc.field}: {exc.message}" if exc.field else exc.message
        try:
            query = CidRequest(cid=validate_cid(cid), viewer=user.viewer())
            found: ContentLocations = await gw.call(Cache.locations, query)
        except ArtdagError:  # not the user's content, or no such cid: only the message
            return render(request, "_flash.html", status_code=status_for(exc), message=text, ok=False)
        return await _section(request, gw, user, found, found.cid, status_for(exc), text, ok=False)
    if not by_htmx:
        return RedirectResponse(f"/cache/{copied.cid}", status_code=303)
    providers = await own_providers(gw, user)
    if copy.provider_id is None:
        target = next((p.name for p in providers if p.default), "your default provider")
    else:
        target = next((p.name for p in providers if p.id == copy.provider_id), copy.provider_id)
    message = f"Copying to {target}: it shows as stored once the copy is verified."
    return await _section(request, gw, user, copied, copied.cid, 202, message, providers=providers)
