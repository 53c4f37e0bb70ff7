"""The web UI under auth, in process: the login page for anonymous visitors, pages and actions that act
as the signed-in user (alice's things are "not found" to bob), CSRF on session forms, and event streams
that carry only the viewer's runs.

A stand-in planner answers like the real one: lists filtered by the request's viewer, everything when a
request has none. A page that forgot to pass the viewer would show bob alice's run here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from nats.aio.client import Client as NatsClient

from artdag_common import rpc, subjects
from artdag_common.bus import publish_event
from artdag_common.contracts import Planner
from artdag_common.errors import NotFoundError
from artdag_common.ids import new_run_id
from artdag_common.nats_server import EmbeddedNatsServer
from artdag_common.schemas import (
    ListRunsRequest,
    Plan,
    RecipeList,
    RunAnalysis,
    RunEvent,
    RunList,
    RunRequest,
    RunState,
    RunStatus,
    RunSummary,
    Viewer,
)
from services.gateway.deps import Gateway
from services.gateway.ui.events import RunFilter, last_sequence, relay
from tests.integration.gateway_harness import Harness, gateway_harness

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


@dataclass
class FakePlanner:
    runs: dict[str, RunState] = field(default_factory=dict)
    cancelled: list[str] = field(default_factory=list)
    viewers: list[Viewer | None] = field(default_factory=list)

    def add(self, owner: str) -> str:
        run_id = new_run_id()
        self.runs[run_id] = RunState(
            run_id=run_id,
            status=RunStatus.COMPLETED,
            recipe_id="QmR",
            recipe_name=f"{owner}-run",
            inputs={},
            owner=owner,
        )
        return run_id

    async def get_run(self, request: RunRequest) -> RunState:
        if request.run_id not in self.runs:
            raise NotFoundError("no such run", field="run_id")
        return self.runs[request.run_id]

    async def list_runs(self, request: ListRunsRequest) -> RunList:
        self.viewers.append(request.viewer)
        shown = [
            RunSummary(
                run_id=s.run_id,
                status=s.status,
                recipe_name=s.recipe_name,
                owner=s.owner,
                created_at=s.created_at,
                updated_at=s.updated_at,
            )
            for s in self.runs.values()
            if request.viewer is None or request.viewer.may_see(s.owner)
        ]
        return RunList(runs=shown, total=len(shown))

    async def recipe_list(self, request: ListRunsRequest) -> RecipeList:
        return RecipeList(recipes=[], total=0)

    async def get_plan(self, request: RunRequest) -> Plan:
        raise NotFoundError("no plan", field="run_id")

    async def get_analysis(self, request: RunRequest) -> RunAnalysis:
        return RunAnalysis(run_id=request.run_id, analyses={})

    async def cancel(self, request: RunRequest) -> RunState:
        self.cancelled.append(request.run_id)
        return self.runs[request.run_id]


@pytest.fixture
async def harness(nats: EmbeddedNatsServer, tmp_path: Path) -> AsyncIterator[Harness]:
    async with gateway_harness(nats, tmp_path) as running:
        yield running


@pytest.fixture
async def planner(nc: NatsClient) -> AsyncIterator[FakePlanner]:
    fake = FakePlanner()
    subs = [
        await rpc.serve(nc, Planner.get_run, fake.get_run),
        await rpc.serve(nc, Planner.list_runs, fake.list_runs),
        await rpc.serve(nc, Planner.recipe_list, fake.recipe_list),
        await rpc.serve(nc, Planner.get_plan, fake.get_plan),
        await rpc.serve(nc, Planner.get_analysis, fake.get_analysis),
        await rpc.serve(nc, Planner.cancel, fake.cancel),
    ]
    try:
        yield fake
    finally:
        for sub in subs:
            await sub.unsubscribe()


async def logged_in(harness: Harness, user: str) -> httpx.AsyncClient:
    """A browser-like client: no Authorization header, the session cookies `GET /auth` sets."""
    browser = httpx.AsyncClient(transport=httpx.ASGITransport(app=harness.app), base_url="http://gateway")
    harness.extra.append(browser)
    login = await browser.get("/auth", params={"auth_token": harness.tokens[user], "next": "/runs"})
    assert login.status_code == 303 and login.headers["location"] == "/runs"
    return browser


@pytest.mark.parametrize(
    "path",
    [
        "/runs",
        "/recipes",
        "/storage",
        "/run/run-0123456789abcdef0123456789abcdef/plan",  # fixed: parallel workers collect the same ids
        "/recipe/QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG",
    ],
)
async def test_a_private_page_asks_an_anonymous_visitor_to_log_in(harness: Harness, path: str) -> None:
    page = await harness.anonymous.get(path, headers=HTML)
    assert page.status_code == 401 and page.headers["content-type"].startswith("text/html")
    assert "Please log in" in page.text and "Bearer" not in page.text  # for people, not the API's hint
    assert '<form class="login-form" method="get" action="/auth"' in page.text
    assert f'<input type="hidden" name="next" value="{path}">' in page.text
    assert 'id="nav-login"' in page.text and 'id="nav-logout"' not in page.text
    # The API under the same path still answers JSON.
    if path in ("/runs", "/recipes", "/storage"):
        api = await harness.anonymous.get(path)
        assert api.status_code == 401 and api.headers["content-type"] == "application/json"


async def test_the_login_form_round_trip(harness: Harness, planner: FakePlanner) -> None:
    form = await harness.anonymous.get("/login", params={"next": "/runs?page=1"}, headers=HTML)
    assert form.status_code == 200 and 'value="/runs?page=1"' in form.text
    evil = await harness.anonymous.get("/login", params={"next": "//evil.example/"}, headers=HTML)
    assert 'name="next" value="/"' in evil.text
    wrong = await harness.anonymous.get(
        "/auth", params={"auth_token": "adt_not-a-real-token-at-all", "next": "/media"}, headers=HTML
    )
    assert wrong.status_code == 401 and "Please log in" in wrong.text and "adt_not-a-real" not in wrong.text
    assert 'name="next" value="/media"' in wrong.text  # the next try goes where the first was going
    browser = await logged_in(harness, "alice")
    runs = await browser.get("/runs", headers=HTML)
    assert runs.status_code == 200
    assert '<span class="nav-user" id="nav-user"' in runs.text and ">alice<" in runs.text.replace(" <", "<")
    assert 'id="nav-logout"' in runs.text and 'id="nav-login"' not in runs.text
    # An unknown page still knows who is signed in.
    missing = await browser.get("/no/such/page", headers=HTML)
    assert missing.status_code == 404 and 'id="nav-user"' in missing.text
    await browser.get("/logout")
    assert (await browser.get("/runs", headers=HTML)).status_code == 401


async def test_the_home_page_shows_private_counts_only_to_a_user(harness: Harness, planner: FakePlanner) -> None:
    planner.add("alice")
    anonymous = await harness.anonymous.get("/", headers=HTML)
    assert anonymous.status_code == 200 and 'id="count-runs"' not in anonymous.text
    assert "alice-run" not in anonymous.text and 'action="/auth"' in anonymous.text
    assert planner.viewers == []  # nobody's runs were even asked for
    bob = await harness.as_user("bob").get("/", headers=HTML)
    assert '<div class="n" id="count-runs">0</div>' in bob.text and "alice-run" not in bob.text
    alice = await harness.client.get("/", headers=HTML)
    assert '<div class="n" id="count-runs">1</div>' in alice.text and "alice-run" in alice.text
    assert all(v is not None for v in planner.viewers)


async def test_bob_cannot_see_or_touch_alices_run(harness: Harness, planner: FakePlanner) -> None:
    run_id = planner.add("alice")
    bob, root = harness.as_user("bob"), harness.as_user("root")
    assert run_id in (await harness.client.get("/runs", headers=HTML)).text
    assert run_id not in (await bob.get("/runs", headers=HTML)).text
    for path in (f"/run/{run_id}/plan", f"/run/{run_id}", f"/run/{run_id}/analysis", f"/run/{run_id}/artifacts"):
        mine = await harness.client.get(path, headers=HTML)
        assert mine.status_code == 200, (path, mine.text[:300])
        theirs = await bob.get(path, headers=HTML)
        assert theirs.status_code == 404 and "Not found" in theirs.text and "alice-run" not in theirs.text, path
        assert (await root.get(path, headers=HTML)).status_code == 200  # admins see all
    assert (await bob.get(f"/ui/run/{run_id}/graph")).status_code == 404
    assert (await bob.get(f"/ui/run/{run_id}/step/QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG")).status_code == 404
    assert (await bob.get(f"/events/run/{run_id}")).status_code == 404
    refused = await bob.delete(f"/ui/run/{run_id}")
    assert refused.status_code == 404 and "HX-Location" not in refused.headers
    assert planner.cancelled == []
    deleted = await harness.client.delete(f"/ui/run/{run_id}")
    assert deleted.headers["HX-Location"] == "/runs" and planner.cancelled == [run_id]


async def test_bob_cannot_see_or_change_alices_media_or_providers(harness: Harness, tmp_path: Path) -> None:
    alice, bob = harness.client, harness.as_user("bob")
    cid = (await alice.post("/cache/upload", files={"file": ("a.bin", b"alice's media")})).json()["cid"]
    assert cid in (await alice.get("/media", headers=HTML)).text
    assert cid not in (await bob.get("/media", headers=HTML)).text
    anonymous = await harness.anonymous.get("/media", headers=HTML)
    assert anonymous.status_code == 200 and cid not in anonymous.text and 'id="media-anonymous"' in anonymous.text
    assert (await bob.patch(f"/ui/media/{cid}/meta", data={"name": "bob's now"})).status_code == 404
    assert (await bob.delete(f"/ui/media/{cid}")).status_code == 404
    meta = (await alice.get(f"/cache/{cid}/meta")).json()
    assert meta["name"] != "bob's now"

    added = await alice.post("/ui/storage", data={"name": "alices-disk", "type": "s3", "config.bucket": "alices"})
    assert added.status_code == 200 and "alices-disk" in added.text
    provider = next(p for p in (await alice.get("/storage")).json()["providers"] if p["name"] == "alices-disk")
    assert provider["owner"] == "alice"
    assert "alices-disk" not in (await bob.get("/storage", headers=HTML)).text
    for response in (
        await bob.post(f"/ui/storage/{provider['id']}/test"),
        await bob.patch(f"/ui/storage/{provider['id']}", data={"name": "bobs"}),
        await bob.delete(f"/ui/storage/{provider['id']}"),
    ):
        assert (
            "alices-disk" not in response.text and "flash" in response.text and "no storage provider" in response.text
        )
    assert [p["name"] for p in (await alice.get("/storage")).json()["providers"]] == ["alices-disk"]


async def test_a_session_form_needs_the_csrf_token(harness: Harness) -> None:
    cid = (await harness.client.post("/cache/upload", files={"file": ("c.bin", b"csrf media")})).json()["cid"]
    browser = await logged_in(harness, "alice")
    csrf = browser.cookies["artdag_csrf"]
    refused = await browser.patch(f"/ui/media/{cid}/meta", data={"name": "no token"})
    assert refused.status_code == 403 and "csrf_token" in refused.text
    wrong = await browser.patch(f"/ui/media/{cid}/meta", data={"name": "wrong"}, headers={"X-CSRF-Token": "nope"})
    assert wrong.status_code == 403
    assert (await harness.client.get(f"/cache/{cid}/meta")).json()["name"] == "c.bin"
    ok = await browser.patch(f"/ui/media/{cid}/meta", data={"name": "with token"}, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200 and "with token" in ok.text
    in_form = await browser.patch(f"/ui/media/{cid}/meta", data={"name": "form field", "csrf_token": csrf})
    assert in_form.status_code == 200 and "form field" in in_form.text
    assert (await harness.client.get(f"/cache/{cid}/meta")).json()["name"] == "form field"
    assert (await browser.delete(f"/ui/media/{cid}")).status_code == 403


async def _collect(gw: Gateway, viewer: Viewer, after: int, want: int) -> list[tuple[int, str]]:
    got: list[tuple[int, str]] = []
    filters = [subjects.RUN_EVENTS_WILDCARD, subjects.STEP_EVENTS_WILDCARD]
    stream = relay(gw, filters, after, new_only=True, allows=RunFilter(gw, viewer).allows)
    try:
        async with asyncio.timeout(10):
            async for text in stream:
                lines = dict(
                    line.split(": ", 1) for line in text.strip().splitlines() if line.startswith(("id", "data"))
                )
                if "data" in lines:
                    got.append((int(lines["id"]), json.loads(lines["data"])["run_id"]))
                    if len(got) >= want:
                        break
    finally:
        await stream.aclose()
    return got


async def test_the_runs_stream_carries_only_the_viewers_runs(harness: Harness, planner: FakePlanner) -> None:
    gw: Gateway = harness.app.state.gateway
    alices, bobs = planner.add("alice"), planner.add("bob")
    gone = new_run_id()  # an event of a run that no longer exists: nobody's to see
    start = await last_sequence(gw)
    for run_id in (alices, gone, bobs, alices, bobs):
        await publish_event(
            # As the planner would (the gateway's own login may not announce runs).
            harness.nc.jetstream(),
            subjects.run_event(run_id, "running"),
            RunEvent(run_id=run_id, status=RunStatus.RUNNING),
        )
    bob = await _collect(gw, Viewer(user="bob"), start, want=2)
    assert [run for _, run in bob] == [bobs, bobs]
    admin = await _collect(gw, Viewer(user="root", admin=True), start, want=5)
    assert [run for _, run in admin] == [alices, gone, bobs, alices, bobs]
    # Resuming after bob's first event (Last-Event-ID) gives the rest, nothing repeated.
    resumed = await _collect(gw, Viewer(user="bob"), bob[0][0], want=1)
    assert resumed == bob[1:]
    assert (await harness.anonymous.get("/events/runs")).status_code == 401
    assert (await harness.anonymous.get(f"/events/run/{alices}")).status_code == 401
