"""Where content is kept, in the web UI: the "Stored at" section, its copy action, and the storage forms'
replication policy fields (a fake gateway answers the bus calls)."""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ValidationError

from artdag_common.contracts import Verb
from artdag_common.errors import InvalidInputError, NotFoundError
from artdag_common.schemas import (
    CidRequest,
    ContentLocation,
    ContentLocations,
    ContentOrigin,
    ContentRecord,
    CopyRequest,
    Principal,
    StorageListRequest,
    StorageProviderInput,
    StorageProviderList,
    StorageProviderPatch,
    StorageProviderRecord,
)
from services.gateway import errors
from services.gateway.auth import current_user
from services.gateway.deps import gateway
from services.gateway.ui import locations
from services.gateway.ui.actions import _config_from, _policy_from
from services.gateway.ui.locations import locations_section, provider_choice
from services.gateway.ui.render import ENV

CID = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
MINE, DISK, OTHERS = "a" * 32, "b" * 32, "c" * 32


def provider(pid: str, name: str, *, owner: str = "alice", default: bool = False) -> StorageProviderRecord:
    return StorageProviderRecord(
        id=pid,
        name=name,
        type="local",
        config={"path": f"/srv/{name}"},
        replicate="all",
        default=default,
        owner=owner,
        created_at=1.0,
        updated_at=2.0,
    )


def location(pid: str, name: str, state: Any, error: str | None = None, attempts: int = 1) -> ContentLocation:
    return ContentLocation(
        provider_id=pid,
        provider_name=name,
        type="local",
        state=state,
        error=error,
        attempts=attempts,
        updated_at=time.time() - 5,
    )


def rows(html: str) -> list[tuple[str, str]]:
    """(provider id, state) of each row of the "Stored at" table."""
    return re.findall(r'<tr data-provider-id="([^"]+)" data-state="([^"]+)">', html)


# -- the section ----------------------------------------------------------------------------


def test_the_section_escapes_everything_it_shows() -> None:
    hostile = "<script>alert(1)</script>"
    found = ContentLocations(
        cid=CID, local=True, locations=[location(MINE, hostile, "failed", error='disk "full" & <b>')]
    )
    html = locations_section(CID, found, [provider(MINE, hostile)], csrf_token='"><script>x</script>')
    assert "<script>" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "disk &#34;full&#34; &amp; &lt;b&gt;" in html
    assert 'name="csrf_token" value="&#34;&gt;&lt;script&gt;x&lt;/script&gt;"' in html


def test_the_table_has_a_row_per_copy_with_its_state_error_and_attempts() -> None:
    found = ContentLocations(
        cid=CID,
        local=True,
        locations=[
            location(MINE, "studio", "stored"),
            location(DISK, "backup", "failed", error="no space left", attempts=3),
        ],
    )
    html = locations_section(CID, found, [])
    assert "<h2>Stored at</h2>" in html
    assert rows(html) == [(MINE, "stored"), (DISK, "failed")]
    assert '<span class="badge stored"' in html and '<span class="badge failed"' in html
    assert "no space left" in html and "(3 attempts)" in html and "5 s ago" in html
    assert "only at the providers" not in html
    assert "<form" not in html, "no providers of the viewer's: nothing to copy to"
    assert "hx-trigger" not in html, "nothing under way: no polling"


def test_content_only_at_providers_says_so_and_a_copy_under_way_polls() -> None:
    found = ContentLocations(cid=CID, local=False, locations=[location(MINE, "studio", "pending")])
    html = locations_section(CID, found, [])
    assert "only at the providers below" in html
    assert f'hx-get="/ui/media/{CID}/locations" hx-trigger="every 2s"' in html


def test_no_copies_and_an_unknown_answer() -> None:
    html = locations_section(CID, ContentLocations(cid=CID, local=True, locations=[]), [])
    assert "<table" not in html and "no copies at storage providers yet" in html
    html = locations_section(CID, None, [provider(MINE, "studio")])
    assert "could not be looked up" in html and "<table" not in html
    assert "<form" in html, "a copy may still be asked for"


def test_the_copy_form_offers_the_viewers_providers_default_first_chosen() -> None:
    found = ContentLocations(cid=CID, local=True, locations=[location(MINE, "studio", "stored")])
    html = locations_section(CID, found, [provider(MINE, "studio"), provider(DISK, "backup", default=True)])
    form = html[html.index("<form") : html.index("</form>")]
    assert f'method="post" action="/ui/media/{CID}/copy"' in form and f'hx-post="/ui/media/{CID}/copy"' in form
    assert 'name="provider_id"' in form and "Copy to provider" in form
    assert f'<option value="{MINE}">studio (local) · stored</option>' in form
    assert f'<option value="{DISK}" selected>backup (local) · default</option>' in form
    assert "csrf_token" not in form, "no token given: pages of the UI send the header"


def test_provider_choice() -> None:
    assert provider_choice({}) is None
    assert provider_choice({"provider_id": "  "}) is None
    assert provider_choice({"provider_id": f" {MINE.upper()} "}) == MINE
    for bad in ("xyz", MINE + "a", "../" + MINE[3:], MINE[:-1] + "g"):
        with pytest.raises(InvalidInputError) as caught:
            provider_choice({"provider_id": bad})
        assert caught.value.field == "provider_id"


# -- the section for a page, and the copy action --------------------------------------------


class FakeGateway:
    """Answers the cache's verbs from a few lists, and records what it was asked."""

    def __init__(self, *, fail_copy: Exception | None = None) -> None:
        self.copies: dict[str, list[ContentLocation]] = {CID: [location(MINE, "studio", "stored")]}
        self.providers = [
            provider(MINE, "studio"),
            provider(DISK, "backup", default=True),
            provider(OTHERS, "bobs", owner="bob"),
        ]
        self.fail_copy = fail_copy
        self.asked: list[tuple[str, BaseModel]] = []

    async def call(self, contract: Verb[Any, Any], request: BaseModel) -> BaseModel:
        assert contract.service == "cache"
        verb = contract.name
        self.asked.append((verb, request))
        if verb == "storage_list":
            assert isinstance(request, StorageListRequest)
            return StorageProviderList(providers=self.providers)  # an admin's answer: everyone's
        if verb == "locations":
            assert isinstance(request, CidRequest)
            if request.cid not in self.copies:
                raise NotFoundError(f"no content {request.cid}", field="cid")
            return ContentLocations(cid=request.cid, local=True, locations=self.copies[request.cid])
        if verb == "copy":
            assert isinstance(request, CopyRequest)
            if self.fail_copy is not None:
                raise self.fail_copy
            if request.cid not in self.copies:
                raise NotFoundError(f"no content {request.cid}", field="cid")
            target = next(p for p in self.providers if p.id == (request.provider_id or DISK))
            self.copies[request.cid].append(location(target.id, target.name, "pending"))
            return ContentLocations(cid=request.cid, local=True, locations=self.copies[request.cid])
        raise AssertionError(f"unexpected verb {verb}")


def app_with(fake: FakeGateway) -> FastAPI:
    app = FastAPI()
    errors.install(app)
    app.include_router(locations.router)
    app.dependency_overrides[gateway] = lambda: fake
    app.dependency_overrides[current_user] = lambda: Principal(
        user="alice", roles=["admin"], token_hash="0" * 64, issued_at=0.0
    )
    return app


def client_for(fake: FakeGateway) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app_with(fake))
    return httpx.AsyncClient(transport=transport, base_url="http://gateway", cookies={"artdag_csrf": "tok"})


async def test_a_page_gets_the_section_only_for_whoever_owns_the_content() -> None:
    from starlette.requests import Request

    fake = FakeGateway()
    request = Request({"type": "http", "headers": [(b"cookie", b"artdag_csrf=tok123")]})
    record = ContentRecord(cid=CID, size=1, media_type="video/mp4", origin=ContentOrigin.UPLOAD, owner="alice")
    alice = Principal(user="alice", token_hash="0" * 64, issued_at=0.0)
    bob = Principal(user="bob", token_hash="1" * 64, issued_at=0.0)
    html = await locations.section_for(request, fake, alice, record)  # type: ignore[arg-type]
    assert rows(html) == [(MINE, "stored")]
    assert 'name="csrf_token" value="tok123"' in html
    assert "bobs" not in html and OTHERS not in html, "another user's provider is no copy target"
    assert await locations.section_for(request, fake, bob, record) == ""  # type: ignore[arg-type]
    assert await locations.section_for(request, fake, None, record) == ""  # type: ignore[arg-type]


async def test_copy_by_htmx_answers_the_refreshed_section() -> None:
    fake = FakeGateway()
    async with client_for(fake) as client:
        answer = await client.post(f"/ui/media/{CID}/copy", data={"provider_id": DISK}, headers={"HX-Request": "true"})
    assert answer.status_code == 202
    assert rows(answer.text) == [(MINE, "stored"), (DISK, "pending")]
    assert "Copying to backup" in answer.text and 'value="tok"' in answer.text
    copy = next(r for v, r in fake.asked if v == "copy")
    assert isinstance(copy, CopyRequest) and copy.provider_id == DISK and copy.viewer is not None
    assert copy.viewer.user == "alice"


async def test_a_plain_form_is_sent_back_to_the_content_page() -> None:
    fake = FakeGateway()
    async with client_for(fake) as client:
        answer = await client.post(f"/ui/media/{CID}/copy", data={"provider_id": ""})
    assert answer.status_code == 303 and answer.headers["location"] == f"/cache/{CID}"
    copy = next(r for v, r in fake.asked if v == "copy")
    assert isinstance(copy, CopyRequest) and copy.provider_id is None, "no choice: the default provider"


async def test_copy_errors_are_a_flash_with_the_status() -> None:
    fake = FakeGateway(fail_copy=InvalidInputError("no default provider: choose one", field="provider_id"))
    async with client_for(fake) as client:
        htmx = {"HX-Request": "true"}
        refused = await client.post(f"/ui/media/{CID}/copy", data={"provider_id": ""}, headers=htmx)
        assert refused.status_code == 422
        assert 'class="flash bad"' in refused.text and "provider_id: no default provider" in refused.text
        assert rows(refused.text) == [(MINE, "stored")], "the section stays, with the message"
        bad_id = await client.post(f"/ui/media/{CID}/copy", data={"provider_id": "nope"}, headers=htmx)
        assert bad_id.status_code == 422 and "32 hex digits" in bad_id.text
        fake.fail_copy = None
        other = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"
        missing = await client.post(f"/ui/media/{other}/copy", data={"provider_id": MINE}, headers=htmx)
        assert missing.status_code == 404 and "Stored at" not in missing.text and "no content" in missing.text
        bad_cid = await client.post("/ui/media/not-a-cid/copy", data={"provider_id": MINE}, headers=htmx)
        assert bad_cid.status_code == 400
        plain = await client.post(f"/ui/media/{CID}/copy", data={"provider_id": "nope"})
        assert plain.status_code == 422, "a plain form gets the error (a page in the real app)"


async def test_the_section_refreshes_and_stops_polling_when_the_content_is_gone() -> None:
    fake = FakeGateway()
    fake.copies[CID] = [location(MINE, "studio", "pending")]
    async with client_for(fake) as client:
        polled = await client.get(f"/ui/media/{CID}/locations")
        assert polled.status_code == 200 and "every 2s" in polled.text
        fake.copies.clear()
        gone = await client.get(f"/ui/media/{CID}/locations")
        assert gone.status_code == 404 and "every 2s" not in gone.text and "could not be looked up" in gone.text


# -- the storage forms ----------------------------------------------------------------------


def form(body: str) -> dict[str, str]:
    """A urlencoded form as the gateway reads it (the last of a repeated field wins)."""
    return dict(parse_qsl(body, keep_blank_values=True))


def test_policy_fields_stay_out_of_the_config() -> None:
    sent = form("name=disk&type=local&config.path=%2Fsrv%2Fd&config.bucket=&replicate=outputs&default=on")
    assert _config_from(sent) == {"path": "/srv/d"}
    assert _policy_from(sent) == {"replicate": "outputs", "default": "on"}
    added = StorageProviderInput(name="disk", type="local", config=_config_from(sent), **_policy_from(sent))
    assert (added.replicate, added.default, added.config) == ("outputs", True, {"path": "/srv/d"})
    plain = StorageProviderInput(name="disk", type="local", **_policy_from(form("name=disk&type=local")))
    assert (plain.replicate, plain.default) == ("none", False)


def test_the_edit_forms_hidden_off_clears_default_and_absent_fields_change_nothing() -> None:
    unticked = StorageProviderPatch(**_policy_from(form("name=d&replicate=all&default=off")))
    assert (unticked.replicate, unticked.default) == ("all", False)
    ticked = StorageProviderPatch(**_policy_from(form("name=d&replicate=none&default=off&default=on")))
    assert (ticked.replicate, ticked.default) == ("none", True)
    untouched = StorageProviderPatch(**_policy_from(form("name=d")))
    assert untouched.replicate is None and untouched.default is None
    with pytest.raises(ValidationError, match="replicate"):
        StorageProviderPatch(**_policy_from(form("replicate=sometimes")))


def test_the_provider_cards_and_forms_show_the_policy() -> None:
    cards = ENV.get_template("_providers.html").render(
        providers=[provider(MINE, "studio", default=True), provider(DISK, "backup")], message=None
    )
    assert cards.count('<td class="replicate">all</td>') == 2
    assert '<td class="default">yes</td>' in cards and '<td class="default">no</td>' in cards
    assert '<option value="all" selected>' in cards and f'id="def-{MINE}" name="default" value="on" checked' in cards
    assert cards.count('<input type="hidden" name="default" value="off">') == 2
    assert f'hx-include="#drop-{MINE}"' in cards and f'id="drop-{MINE}" name="keep_copies" value="false"' in cards
    assert "also delete the copies" in cards and "hx-confirm=" in cards
    page = ENV.get_template("storage.html").render(
        providers=[], types=["s3", "local", "pinning"], store="local", path="/storage", user=None, here="/storage"
    )
    add = page[page.index('id="add-provider"') :]
    assert '<option value="pinning">pinning — an IPFS pinning service</option>' in add
    assert 'name="replicate"' in add and '<option value="none" selected>' in add
    assert 'name="default" value="on">' in add and 'name="default" value="off"' not in add
