"""Authentication and authorization at the gateway: tokens, refusals, ownership, CSRF, rate limits, revocation."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute
from nats.aio.client import Client as NatsClient

from artdag_common import rpc
from artdag_common.contracts import Auth, Planner
from artdag_common.errors import NotFoundError
from artdag_common.ids import new_run_id
from artdag_common.nats_server import EmbeddedNatsServer, free_port
from artdag_common.schemas import IssueTokenRequest, RunRequest, RunState, RunStatus
from artdag_common.tokens import token_hash
from artdag_dev.testing import bus_environment
from tests.integration.gateway_harness import Harness, gateway_harness

MUTATING = {"post", "put", "patch", "delete"}


@pytest.fixture
async def harness(nats: EmbeddedNatsServer, tmp_path: Path) -> AsyncIterator[Harness]:
    # Storage providers here point at loopback: private addresses allowed (test_provider_egress.py has them off).
    async with gateway_harness(nats, tmp_path, provider_allow_private=True) as running:
        yield running


def _fill(path: str) -> str:
    """A concrete URL for an OpenAPI path: every parameter gets a plausible value."""
    return re.sub(r"\{[^}]+\}", "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG", path)


async def test_every_mutating_route_refuses_an_anonymous_request(harness: Harness) -> None:
    schema = (await harness.anonymous.get("/openapi.json")).json()
    routes = [(method, path) for path, ops in schema["paths"].items() for method in ops if method in MUTATING]
    assert len(routes) >= 20, routes  # the walk really covers the API
    refused: dict[str, int] = {}
    for method, path in routes:
        response = await harness.anonymous.request(method.upper(), _fill(path), json={})
        refused[f"{method.upper()} {path}"] = response.status_code
    assert refused == dict.fromkeys(refused, 401), {k: v for k, v in refused.items() if v != 401}
    # Routes left out of the schema (web UI forms) must refuse too: walk the app's own routing table.
    hidden: dict[str, int] = {}
    for route in harness.app.routes:
        if isinstance(route, APIRoute) and not route.include_in_schema:
            for method in sorted((route.methods or set()) & {m.upper() for m in MUTATING}):
                response = await harness.anonymous.request(method, _fill(route.path), json={})
                hidden[f"{method} {route.path}"] = response.status_code
    assert hidden == dict.fromkeys(hidden, 401), hidden
    # …and with a bad token too, before any body is looked at.
    bad = await harness.anonymous.post("/runs", json={}, headers={"Authorization": "Bearer adt_nope-not-a-token"})
    assert bad.status_code == 401 and bad.headers["www-authenticate"].startswith("Bearer")


async def test_refusals_have_the_right_status(harness: Harness) -> None:
    anonymous = harness.anonymous
    assert (await anonymous.post("/cache/upload", files={"file": ("a", b"x")})).status_code == 401
    garbage = {"Authorization": "Bearer adt_" + "x" * 43}
    assert (await anonymous.get("/auth/me", headers=garbage)).status_code == 401
    assert (await anonymous.get("/auth/me", headers={"Authorization": "Basic abc"})).status_code == 401
    assert (await anonymous.get("/auth/me", headers={"Authorization": "Bearer"})).status_code == 401

    me = await harness.client.get("/auth/me")
    assert me.status_code == 200 and me.json()["user"] == "alice" and me.json()["roles"] == []

    short = await harness.issue("carol", ttl_s=0.5)
    headers = {"Authorization": f"Bearer {short}"}
    assert (await anonymous.get("/auth/me", headers=headers)).status_code == 200
    await asyncio.sleep(0.7)
    expired = await anonymous.get("/auth/me", headers=headers)  # cached as valid, but past its expiry
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]

    doomed = await harness.issue("dave")
    headers = {"Authorization": f"Bearer {doomed}"}
    assert (await anonymous.get("/auth/me", headers=headers)).status_code == 200
    revoked = await anonymous.post("/auth/revoke", headers=headers)
    assert revoked.status_code == 200 and revoked.json()["token_hash"] == token_hash(doomed)
    after = await anonymous.get("/auth/me", headers=headers)
    assert after.status_code == 401 and "revoked" in after.json()["detail"]


async def test_users_see_only_their_own_content_and_providers(harness: Harness, tmp_path: Path) -> None:
    alice, bob, root = harness.client, harness.as_user("bob"), harness.as_user("root")
    mine = (await alice.post("/cache/upload", files={"file": ("a.bin", b"alice's bytes")})).json()
    cid = mine["cid"]
    assert mine["owner"] == "alice"
    assert (await alice.get(f"/cache/{cid}/raw")).content == b"alice's bytes"
    for response in (
        await bob.get(f"/cache/{cid}"),
        await bob.get(f"/cache/{cid}/raw"),
        await bob.patch(f"/cache/{cid}/meta", json={"name": "mine now"}),
        await bob.delete(f"/cache/{cid}"),
        await harness.anonymous.get(f"/cache/{cid}/raw"),
    ):
        assert response.status_code == 404, response.text
    assert cid not in [i["cid"] for i in (await bob.get("/media")).json()["items"]]
    assert (await harness.anonymous.get("/media")).json()["total"] == 0
    assert (await root.get(f"/cache/{cid}/raw")).status_code == 200  # admins see all
    assert cid in [i["cid"] for i in (await root.get("/media")).json()["items"]]
    # The same bytes uploaded by bob: now both hold them; bob deleting lets go of his hold only.
    again = await bob.post("/cache/upload", files={"file": ("b.bin", b"alice's bytes")})
    assert again.status_code == 201 and again.json()["cid"] == cid
    assert (await bob.get(f"/cache/{cid}/raw")).status_code == 200
    let_go = await bob.delete(f"/cache/{cid}")
    assert let_go.status_code == 200 and let_go.json()["blob_deleted"] is False
    assert (await bob.get(f"/cache/{cid}/raw")).status_code == 404
    assert (await alice.get(f"/cache/{cid}/raw")).content == b"alice's bytes"

    bucket = {"bucket": "alices-bucket", "endpoint_url": f"http://127.0.0.1:{free_port()}"}  # nothing listens
    added = await alice.post("/storage/add", json={"name": "disk", "type": "s3", "config": bucket})
    assert added.status_code == 201 and added.json()["owner"] == "alice"
    provider = added.json()["id"]
    forged = await bob.post(
        "/storage/add",
        json={"name": "d", "type": "s3", "config": bucket, "owner": "alice", "viewer": {"user": "bob", "admin": True}},
    )
    assert forged.json()["owner"] == "bob"  # the owner is the caller, whatever the body says
    claimed = await bob.post(  # and so are the caller's rights
        "/storage/add",
        json={"name": "d", "type": "local", "config": {"path": str(tmp_path)}, "viewer": {"admin": True}},
    )
    assert claimed.status_code == 403, claimed.text
    assert [p["name"] for p in (await bob.get("/storage")).json()["providers"]] == ["d"]
    for response in (
        await bob.get(f"/storage/{provider}"),
        await bob.post(f"/storage/{provider}/test"),
        await bob.patch(f"/storage/{provider}", json={"name": "x"}),
        await bob.delete(f"/storage/{provider}"),
    ):
        assert response.status_code == 404, response.text
    assert (await alice.post(f"/storage/{provider}/test")).json()["id"] == provider
    assert len((await root.get("/storage")).json()["providers"]) == 2


async def test_another_users_run_is_not_found(harness: Harness, nc: NatsClient) -> None:
    run_id = new_run_id()
    state = RunState(
        run_id=run_id, status=RunStatus.COMPLETED, recipe_id="QmR", recipe_name="r", inputs={}, owner="alice"
    )
    cancelled: list[str] = []

    async def get_run(request: RunRequest) -> RunState:
        if request.run_id != run_id:
            raise NotFoundError("no such run", field="run_id")
        return state

    async def cancel(request: RunRequest) -> RunState:
        cancelled.append(request.run_id)
        return state

    subs = [
        await rpc.serve(nc, Planner.get_run, get_run),
        await rpc.serve(nc, Planner.cancel, cancel),
    ]
    try:
        bob, root = harness.as_user("bob"), harness.as_user("root")
        assert (await harness.client.get(f"/runs/{run_id}")).status_code == 200
        assert (await bob.get(f"/runs/{run_id}")).status_code == 404
        assert (await bob.get(f"/api/run/{run_id}/plan")).status_code == 404
        assert (await bob.delete(f"/runs/{run_id}")).status_code == 404
        assert cancelled == []
        assert (await harness.anonymous.get(f"/runs/{run_id}")).status_code == 401
        assert (await root.get(f"/runs/{run_id}")).status_code == 200
        assert (await harness.client.delete(f"/runs/{run_id}")).status_code == 200
        assert cancelled == [run_id]
    finally:
        for sub in subs:
            await sub.unsubscribe()


async def test_session_cookie_login_csrf_and_logout(harness: Harness) -> None:
    token = harness.tokens["alice"]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=harness.app), base_url="http://gateway") as browser:
        bad = await browser.get("/auth", params={"auth_token": "adt_wrong-wrong-wrong-wrong"})
        assert bad.status_code == 401 and "set-cookie" not in bad.headers
        login = await browser.get("/auth", params={"auth_token": token, "next": "//evil.example/"})
        assert login.status_code == 303 and login.headers["location"] == "/"
        cookies = login.headers.get_list("set-cookie")
        session = next(c for c in cookies if c.startswith("artdag_session="))
        csrf_cookie = next(c for c in cookies if c.startswith("artdag_csrf="))
        assert "HttpOnly" in session and "samesite=lax" in session.lower() and "Secure" not in session
        assert "HttpOnly" not in csrf_cookie
        csrf = browser.cookies["artdag_csrf"]

        assert (await browser.get("/auth/me")).json()["user"] == "alice"  # reads need no CSRF token
        no_csrf = await browser.post("/cache/upload", files={"file": ("a.bin", b"from a form")})
        assert no_csrf.status_code == 403 and no_csrf.json()["error"]["field"] == "csrf_token"
        wrong = await browser.post("/cache/upload", files={"file": ("a.bin", b"x")}, headers={"X-CSRF-Token": "nope"})
        assert wrong.status_code == 403
        ok = await browser.post(
            "/cache/upload", files={"file": ("a.bin", b"from a form")}, headers={"X-CSRF-Token": csrf}
        )
        assert ok.status_code == 201 and ok.json()["owner"] == "alice"
        in_form = await browser.post(
            "/cache/upload", files={"file": ("b.bin", b"field form")}, data={"csrf_token": csrf}
        )
        assert in_form.status_code == 201, in_form.text
        urlencoded = await browser.post(
            "/storage", data={"name": "d", "type": "s3", "bucket": "a-bucket", "csrf_token": csrf}
        )
        assert urlencoded.status_code == 201, urlencoded.text
        assert "csrf_token" not in urlencoded.json()["config"]

        out = await browser.get("/logout")
        assert out.status_code == 303 and out.headers["location"] == "/"
        assert not browser.cookies.get("artdag_session")
        assert (await browser.get("/auth/me")).status_code == 401

    # Over https (behind a proxy that says so) the cookies are Secure; Bearer requests need no CSRF token.
    secure = await harness.anonymous.get("/auth", params={"auth_token": token}, headers={"X-Forwarded-Proto": "https"})
    assert all("Secure" in c for c in secure.headers.get_list("set-cookie"))
    onward = await harness.anonymous.get("/auth", params={"auth_token": token, "next": "/media?type=video"})
    assert onward.status_code == 303 and onward.headers["location"] == "/media?type=video"
    bearer = await harness.client.post("/cache/upload", files={"file": ("c.bin", b"api")})
    assert bearer.status_code == 201


async def test_failed_checks_are_rate_limited_per_client(nats: EmbeddedNatsServer, tmp_path: Path) -> None:
    async with gateway_harness(nats, tmp_path, start_cache_service=False, auth_fail_limit=3) as harness:
        bad = {"Authorization": "Bearer adt_" + "y" * 43}
        codes = [(await harness.anonymous.get("/auth/me", headers=bad)).status_code for _ in range(3)]
        assert codes == [401, 401, 401]
        limited = await harness.anonymous.get("/auth/me", headers=bad)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        # Only refused tokens are held back: a valid one from the same address still works…
        assert (await harness.client.get("/auth/me")).status_code == 200
        # …while failed logins wait like any other refused token.
        assert (await harness.anonymous.get("/auth", params={"auth_token": "adt_" + "z" * 43})).status_code == 429
        # Another client address is not held back.
        other = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=harness.app, client=("10.0.0.9", 1234)),
            base_url="http://gateway",
            headers=bad,
        )
        async with other:
            assert (await other.get("/auth/me")).status_code == 401


async def test_revoke_user_needs_l2_or_admin(harness: Harness) -> None:
    victim = await harness.issue("erin")
    headers = {"Authorization": f"Bearer {victim}"}
    assert (await harness.anonymous.get("/auth/me", headers=headers)).status_code == 200
    assert (await harness.anonymous.post("/auth/revoke-user", json={"username": "erin"})).status_code == 401
    assert (await harness.client.post("/auth/revoke-user", json={"username": "erin"})).status_code == 403
    forged = await harness.anonymous.post(
        "/auth/revoke-user",
        json={"username": "erin"},
        headers={"Signature": 'keyId="https://evil.example/actor#k",signature="AAAA"'},
    )
    assert forged.status_code == 401
    assert (await harness.anonymous.get("/auth/me", headers=headers)).status_code == 200
    # An l2-scoped token (what an L2 holds) may do it.
    scoped = await rpc.call(harness.nc, Auth.issue, IssueTokenRequest(user="l2", scopes=["l2"]), timeout_s=5.0)
    done = await harness.anonymous.post(
        "/auth/revoke-user", json={"username": "erin"}, headers={"Authorization": f"Bearer {scoped.token}"}
    )
    assert done.status_code == 200 and done.json()["revoked"] == 1
    assert (await harness.anonymous.get("/auth/me", headers=headers)).status_code == 401
    # A token made after the revocation works.
    fresh = await harness.issue("erin")
    assert (await harness.anonymous.get("/auth/me", headers={"Authorization": f"Bearer {fresh}"})).status_code == 200


async def test_no_token_or_secret_reaches_the_logs(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token = harness.tokens["alice"]
    wrong = "adt_" + "q" * 43
    await harness.client.get("/auth/me")
    await harness.anonymous.get("/auth", params={"auth_token": token})
    response = await harness.anonymous.get("/auth/me", headers={"Authorization": f"Bearer {wrong}"})
    await harness.anonymous.get("/auth", params={"auth_token": wrong})
    await harness.client.post(
        "/storage/add",
        json={
            "name": "s3",
            "type": "s3",
            "config": {
                "bucket": "b",
                "endpoint_url": "http://127.0.0.1:9",
                "access_key_id": "AK",
                "secret_access_key": "sshh",
            },
        },
    )
    revoked = await harness.issue("frank")
    assert (await harness.client.post("/auth/revoke", json={"token": revoked})).status_code == 200
    # What the server side logged (the test's own HTTP client logs its URLs: that is not the server).
    server_records = [r for r in caplog.records if not r.name.startswith("httpx")]
    assert server_records, "nothing was logged: the test would prove nothing"
    text = "\n".join(r.getMessage() for r in server_records)
    for secret in (token, wrong, revoked, "sshh"):
        assert secret not in text
        assert secret not in response.text
    assert token_hash(token)[:12] in text  # tokens are named by a hash prefix


def test_log_lines_that_carry_a_token_are_redacted() -> None:
    from artdag_common.runtime import RedactSecrets

    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s "GET /auth?auth_token=%s&next=/ HTTP/1.1"',
        ("1.2.3.4", "adt_s3cret"),
        None,
    )
    RedactSecrets().filter(record)
    assert "adt_s3cret" not in record.getMessage() and "auth_token=[redacted]&next=/" in record.getMessage()


async def test_revocation_reaches_a_second_gateway_process_within_a_second(
    harness: Harness, nats: EmbeddedNatsServer
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARTDAG_")}
    env.update(
        ARTDAG_HOME=str(harness.home),
        **bus_environment(nats, "gateway"),
        ARTDAG_DATABASE_URL=f"sqlite+aiosqlite:///{harness.home / 'artdag.db'}",
        ARTDAG_PORT=str(port),
        ARTDAG_AUTH_CACHE_S="300",  # the cache would trust the token for minutes: only the revocation stops it
    )
    log = harness.home / "gateway-2.log"
    with log.open("wb") as out:
        second = subprocess.Popen(  # noqa: ASYNC220 - started once; the test then only polls it over HTTP
            [sys.executable, "-m", "services.gateway"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    token = await harness.issue("grace")
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as other:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if (await other.get("/auth/me")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert second.poll() is None and time.monotonic() < deadline, log.read_text()
                await asyncio.sleep(0.1)
            # Now cached as valid on the second gateway; revoke through the first.
            revoked = await harness.anonymous.post("/auth/revoke", headers=headers)
            assert revoked.status_code == 200
            started = time.monotonic()
            while (await other.get("/auth/me")).status_code == 200:
                assert time.monotonic() - started < 1.0, "revocation did not reach the second gateway within 1 s"
                await asyncio.sleep(0.01)
            elapsed = time.monotonic() - started
            print(f"revocation reached the second gateway in {elapsed * 1000:.0f} ms")
            assert (await other.get("/auth/me")).status_code == 401
    finally:
        second.terminate()
        second.wait(10)


async def test_revocations_live_in_a_kv_bucket_with_a_30_day_ttl(harness: Harness) -> None:
    doomed = await harness.issue("heidi")
    assert (await harness.client.post("/auth/revoke", json={"token": doomed})).status_code == 200
    kv = await harness.nc.jetstream().key_value("artdag_revoked")
    assert (await kv.status()).ttl == 30 * 86_400
    entry = await kv.get(f"tok.{token_hash(doomed)}")
    assert entry.value  # when it was revoked; the token itself is nowhere in the bucket
    assert doomed.encode() not in (entry.value or b"")
