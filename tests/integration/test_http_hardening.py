"""The gateway's smaller holes, closed and kept closed (issue 17): errors are always typed JSON, replies
too large for the bus still arrive, lists are bounded, the failed-auth limiter never holds back a valid
token, imports give no file-existence oracle, event streams end with their token and are capped per
user, every response carries the security headers, and /health tells only admins the details.

In process: the gateway app with the cache and auth services over the session's real nats-server.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from nats.aio.client import Client as NatsClient

from artdag_common import rpc, streams
from artdag_common.bus import connect
from artdag_common.cid import cid_of_bytes
from artdag_common.codec import pack
from artdag_common.contracts import Planner, Verb
from artdag_common.errors import InvalidMediaError, public_message
from artdag_common.nats_server import EmbeddedNatsServer
from artdag_common.schemas import CidRequest, ContentRecord, Plan, PlannedStep, PlanReply, PlanRequest, PlanStep
from services.gateway.deps import Gateway
from services.gateway.settings import GatewaySettings
from services.gateway.ui.events import last_sequence
from services.gateway.ui.render import TEMPLATES
from tests.integration.gateway_harness import Harness, gateway_harness

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


@pytest.fixture
async def harness(nats: EmbeddedNatsServer, tmp_path: Path) -> AsyncIterator[Harness]:
    async with gateway_harness(nats, tmp_path, auth_fail_limit=4, sse_per_user=2, sse_recheck_s=0.1) as running:
        yield running


def _is_error_body(body: Any) -> bool:
    return (
        isinstance(body, dict)
        and isinstance(body.get("detail"), str)
        and isinstance(body.get("error"), dict)
        and {"code", "message", "field"} <= set(body["error"])
    )


# -- 1. errors are always typed JSON ----------------------------------------------------


@pytest.mark.parametrize("name", ["日本.mp4", "clip—final.mp4", "a" * 5000 + ".mp4", 'quo"te\\back/slash.mp4'])
async def test_odd_file_names_upload_and_download(harness: Harness, name: str) -> None:
    uploaded = await harness.client.post("/cache/upload", files={"file": (name, b"odd name " + name.encode()[:8])})
    assert uploaded.status_code == 201, uploaded.text
    record = uploaded.json()
    if '"' not in name:  # (httpx sends a quote in a file name as %22, as browsers do)
        assert record["name"] == (name if len(name) <= 512 else name[:508] + ".mp4")
    raw = await harness.client.get(f"/cache/{record['cid']}/raw")
    assert raw.status_code == 200
    disposition = raw.headers["content-disposition"]
    assert disposition.isascii() and len(disposition) < 2048
    plain = re.search(r'filename="([^"]*)"', disposition)
    assert plain is not None and plain.group(1).isascii() and plain.group(1)
    encoded = re.search(r"filename\*=UTF-8''(\S+)", disposition)
    assert encoded is not None
    sent = unquote(encoded.group(1))
    if len(name) < 200 and '"' not in name:
        assert sent == name  # RFC 5987: the name as it is
    else:
        assert sent.endswith(".mp4") and len(sent) <= 200 and '"' not in sent and "/" not in sent


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data; boundary=xyz", b"not multipart at all"),
        (
            "multipart/form-data; boundary=xyz",
            b"--xyz\r\nContent-Disposition: form-data; name=file\r\n" + b"h" * 40_000,
        ),
        ("multipart/form-data", b"--xyz\r\n\r\n"),
        ("application/json", b"{}"),
        ("multipart/form-data; boundary=xyz", b"--xyz\r\n" + "Content-Disposition: ü\r\n".encode() * 20 + b"\r\n"),
    ],
)
async def test_malformed_multipart_is_a_json_4xx(harness: Harness, content_type: str, body: bytes) -> None:
    # (/recipes/upload takes any other body as the recipe's text itself)
    paths = ["/cache/upload", "/storage"] + (["/recipes/upload"] if content_type.startswith("multipart/") else [])
    for path in paths:
        answer = await harness.client.post(path, content=body, headers={"Content-Type": content_type})
        assert 400 <= answer.status_code < 500, (path, answer.status_code, answer.text)
        assert _is_error_body(answer.json()), (path, answer.text)


async def test_a_bug_is_a_generic_json_500_and_its_detail_only_logged(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "/home/artdag/store/ab/QmSecret nats://10.1.2.3:4222"

    async def broken() -> None:
        raise RuntimeError(secret)

    harness.app.add_api_route("/test-only/broken", broken)
    with caplog.at_level(logging.ERROR, logger="services.gateway.errors"):
        answer = await harness.client.get("/test-only/broken")
    assert answer.status_code == 500
    assert answer.json() == {
        "detail": "internal error",
        "error": {"code": "internal", "message": "internal error", "field": None},
    }
    assert "QmSecret" not in answer.text and "nats://" not in answer.text
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert secret in caplog.text  # the operator sees what happened


async def test_service_errors_say_what_failed_not_where(nc: NatsClient) -> None:
    assert (
        public_message("cannot open media: Invalid data: '/tmp/x/store/ab/QmA'")
        == "cannot open media: Invalid data: 'QmA'"
    )
    assert public_message("no plan (make one with POST /api/plan)") == "no plan (make one with POST /api/plan)"
    assert public_message("Invalid data: '/work/artdag/store/QmB'") == "Invalid data: 'QmB'"

    async def probe(_request: CidRequest) -> ContentRecord:
        raise InvalidMediaError("cannot open /data/store/Qm/abc.mp4 (moov atom not found)", field="cid")

    hardening_probe = Verb("analyzer", "hardening_probe", CidRequest, ContentRecord, "a test verb")
    sub = await rpc.serve(nc, hardening_probe, probe)
    try:
        with pytest.raises(InvalidMediaError) as raised:
            await rpc.call(nc, hardening_probe, CidRequest(cid=cid_of_bytes(b"x")), timeout_s=5.0)
    finally:
        await sub.unsubscribe()
    assert raised.value.message == "cannot open abc.mp4 (moov atom not found)"


async def test_openapi_documents_the_error_shape_and_statuses(harness: Harness) -> None:
    spec = (await harness.anonymous.get("/openapi.json")).json()
    error = spec["components"]["schemas"]["ErrorBody"]
    assert error["properties"]["detail"]["type"] == "string"
    undocumented: list[str] = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            for status in ("422", "500", "503"):
                if status not in responses:
                    undocumented.append(f"{method} {path} {status}")
            for status, response in responses.items():
                if status.startswith(("4", "5")):
                    text = json.dumps(response.get("content", {}))
                    if "ErrorBody" not in text or "HTTPValidationError" in text:
                        undocumented.append(f"{method} {path} {status}: {text[:80]}")
    assert undocumented == []
    assert "404" in spec["paths"]["/runs/{run_id}"]["get"]["responses"]
    assert "409" in spec["paths"]["/cache/{cid}"]["delete"]["responses"]
    assert "413" in spec["paths"]["/cache/upload"]["post"]["responses"]
    assert "400" in spec["paths"]["/cache/import"]["post"]["responses"]
    assert "401" in spec["paths"]["/runs"]["get"]["responses"]


# -- 2. replies too large for the bus -----------------------------------------------------


def _big_plan_reply(steps: int) -> PlanReply:
    """A plan whose JSON packs to more than 1 MiB: step ids and configs do not compress."""
    planned: list[PlanStep] = []
    for i in range(steps):
        step_id = hashlib.sha3_256(f"step {i}".encode()).hexdigest()
        noise = base64.b64encode(hashlib.sha3_512(f"noise {i}".encode()).digest()).decode()
        inputs = [planned[-1].step_id] if planned else []
        planned.append(
            PlanStep(
                step_id=step_id, name=f"s{i}", node_type="NOOP", config={"n": noise}, inputs=inputs, op_version="1"
            )
        )
    plan = Plan(
        plan_id="p" * 64,
        recipe_id="r",
        recipe_name="big",
        input_cids={},
        steps=planned,
        output_step=planned[-1].step_id,
    )
    return PlanReply(
        plan=plan,
        steps=[
            PlannedStep(step_id=s.step_id, name=s.name, node_type=s.node_type, level=i, status="to-run")
            for i, s in enumerate(planned)
        ],
        to_run=steps,
        cached=0,
        cost_frames=0,
    )


async def test_a_dry_run_reply_over_the_bus_limit_arrives_whole(harness: Harness, nats: EmbeddedNatsServer) -> None:
    reply = _big_plan_reply(12_000)
    packed = pack(reply.model_dump_json().encode())
    planner = await connect(
        nats.url, "pytest-big-planner", login=nats.credentials.login("planner") if nats.credentials else None
    )
    assert len(packed) > planner.max_payload >= 1024 * 1024  # really over the limit, even compressed

    async def dry_run(_request: PlanRequest) -> PlanReply:
        return reply

    try:
        await rpc.serve(planner, Planner.dry_run, dry_run)
        answer = await harness.client.post("/api/plan", json={"recipe": "name: big\nsteps: []\n"}, timeout=30)
        assert answer.status_code == 200, answer.text[:300]
        body = answer.json()
        assert (
            len(body["plan"]["steps"]) == 12_000 and body["plan"]["steps"][-1]["config"] == reply.plan.steps[-1].config
        )
        # Read once, then gone: the replies bucket does not fill up.
        replies = await harness.nc.jetstream().object_store(streams.OBJ_RPC_REPLIES.bucket or "")
        for _ in range(50):
            if not [o for o in await _objects(replies) if not o.deleted]:
                break
            await asyncio.sleep(0.05)
        assert [o.name for o in await _objects(replies) if not o.deleted] == []
    finally:
        await planner.close()


async def _objects(store: Any) -> list[Any]:
    try:
        return list(await store.list(ignore_deletes=True))
    except Exception:  # noqa: BLE001 - nats-py: "no objects found" when empty
        return []


# -- 3. pagination bounded ----------------------------------------------------------------


async def test_list_routes_refuse_offsets_and_limits_out_of_bounds(harness: Harness) -> None:
    for client, path in (
        (harness.anonymous, "/media"),
        (harness.client, "/media"),
        (harness.client, "/runs"),
        (harness.client, "/recipes"),
    ):
        for params, field in (
            ({"offset": 10**20}, "offset"),
            ({"offset": 10**6 + 1}, "offset"),
            ({"limit": 10**9}, "limit"),
            ({"offset": -1}, "offset"),
        ):
            answer = await client.get(path, params=params)
            assert answer.status_code == 422, (path, params, answer.text)
            assert answer.json()["error"]["field"] == field
    assert (await harness.anonymous.get("/media", params={"offset": 10**6})).json()["items"] == []


# -- 4. the failed-auth limiter and the proxy's address ---------------------------------


async def test_the_limit_counts_forwarded_clients_and_never_a_valid_token(harness: Harness) -> None:
    bad = "Bearer adt_" + "q" * 43

    async def me(token: str, forwarded_for: str | None = None, peer: str = "127.0.0.1") -> int:
        headers = {"Authorization": token} | ({"X-Forwarded-For": forwarded_for} if forwarded_for else {})
        transport = httpx.ASGITransport(app=harness.app, client=(peer, 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            return (await client.get("/auth/me", headers=headers)).status_code

    good = f"Bearer {harness.tokens['alice']}"
    # Behind the trusted proxy (127.0.0.1 by default) each forwarded client has a limit of its own.
    assert [await me(bad, "203.0.113.7") for _ in range(5)] == [401, 401, 401, 401, 429]
    assert await me(good, "203.0.113.7") == 200  # a valid token is never held back
    assert await me(bad, "203.0.113.8") == 401
    # An untrusted peer's X-Forwarded-For is not believed: its own address is what counts.
    assert [await me(bad, f"198.51.100.{i}", peer="192.0.2.50") for i in range(5)] == [401, 401, 401, 401, 429]
    assert await me(good, "198.51.100.99", peer="192.0.2.50") == 200
    with pytest.raises(ValueError, match="not an IP address"):
        GatewaySettings(trusted_proxies="10.0.0.0/8, ingress")
    assert GatewaySettings(trusted_proxies="10.0.0.0/8,fd00::/8").trusted_proxies


# -- 5. /cache/import: no file-existence oracle ------------------------------------------


async def test_import_answers_outside_paths_alike_whether_or_not_they_exist(harness: Harness, tmp_path: Path) -> None:
    existing = tmp_path / "exists.txt"
    existing.write_text("private")
    (harness.imports / "loop").symlink_to(harness.imports / "loop")
    answers = [
        await harness.client.post("/cache/import", params={"path": path})
        for path in (
            str(existing),
            str(tmp_path / "missing.txt"),
            "/etc/shadow",
            "/nonexistent/dir/x",
            str(harness.imports / ".." / "exists.txt"),
        )
    ]
    assert {a.status_code for a in answers} == {403}
    assert len({a.text for a in answers}) == 1
    inside_missing = await harness.client.post("/cache/import", params={"path": str(harness.imports / "missing.png")})
    assert inside_missing.status_code == 404
    assert (
        await harness.client.post("/cache/import", params={"path": str(harness.imports / "loop")})
    ).status_code == 403
    # Without the parameter: a 422 that names it (a field called `path`, like the place FastAPI files it under).
    missing = await harness.client.post("/cache/import")
    assert missing.status_code == 422 and missing.json()["error"]["field"] == "path", missing.text


# -- 6. event streams end with their token, and are capped per user ----------------------


async def _stream(harness: Harness, token: str, path: str = "/events/runs") -> httpx.Response:
    transport = httpx.ASGITransport(app=harness.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        return await client.get(path, headers={"Authorization": f"Bearer {token}"})


async def _wait_open(gw: Gateway, user: str, count: int) -> None:
    for _ in range(200):
        if gw.event_streams.open.get(user, 0) == count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{user} has {gw.event_streams.open.get(user, 0)} streams open, not {count}")


async def test_an_event_stream_ends_when_its_token_is_revoked_or_expires(harness: Harness) -> None:
    gw: Gateway = harness.app.state.gateway
    token = await harness.issue("sse-user")
    streaming = asyncio.create_task(_stream(harness, token))
    await _wait_open(gw, "sse-user", 1)
    revoked = await harness.as_user("alice").post("/auth/revoke", json={"token": token})
    assert revoked.status_code == 200
    ended = await asyncio.wait_for(streaming, 5)
    assert ended.status_code == 200 and ended.text.rstrip().endswith('data: {"reason": "token revoked"}')
    await _wait_open(gw, "sse-user", 0)

    short = await harness.issue("sse-user", ttl_s=1.0)
    # Resuming from where the stream stands (the session's bus holds other tests' runs, whose owners this
    # harness, without a planner, cannot ask).
    after = await last_sequence(gw)
    expired = await asyncio.wait_for(_stream(harness, short, f"/events/runs?after={after}"), 5)
    assert expired.status_code == 200 and '"token expired"' in expired.text
    await _wait_open(gw, "sse-user", 0)


async def test_event_streams_are_capped_per_user(harness: Harness) -> None:
    gw: Gateway = harness.app.state.gateway
    tokens = [await harness.issue("busy", ttl_s=1.5) for _ in range(2)]
    open_streams = [asyncio.create_task(_stream(harness, token)) for token in tokens]
    await _wait_open(gw, "busy", 2)
    over = await _stream(harness, await harness.issue("busy"))
    assert over.status_code == 429 and _is_error_body(over.json())
    assert over.json()["error"]["code"] == "rate_limited" and int(over.headers["retry-after"]) >= 1
    await asyncio.wait_for(asyncio.gather(*open_streams), 5)  # their tokens expire: the slots come back
    await _wait_open(gw, "busy", 0)


# -- 7. security headers ---------------------------------------------------------------


def _check_headers(response: httpx.Response, what: str) -> str:
    policy: str = response.headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in policy, (what, policy)
    assert "'unsafe-inline'" not in policy.split("script-src", 1)[-1].split(";", 1)[0], (what, policy)
    assert response.headers.get("x-content-type-options") == "nosniff", what
    assert response.headers.get("referrer-policy"), what
    return policy


async def test_every_page_and_download_carries_the_security_headers(harness: Harness) -> None:
    image = (
        await harness.client.post("/cache/upload", files={"file": ("dot.svg", b"<svg><script>alert(1)</script></svg>")})
    ).json()
    browser = harness.as_user("alice")
    responses = {
        "home page": await browser.get("/", headers=HTML),
        "runs page": await harness.anonymous.get("/runs", headers=HTML),
        "login page": await browser.get("/login", headers=HTML),
        "media page": await browser.get("/media", headers=HTML),
        "storage page": await browser.get("/storage", headers=HTML),
        "content page": await browser.get(f"/cache/{image['cid']}", headers=HTML),
        "download": await browser.get(f"/cache/{image['cid']}/raw"),
        "json": await browser.get("/media"),
        "not found": await browser.get("/nowhere"),
        "docs": await harness.anonymous.get("/docs"),
        "static": await harness.anonymous.get("/static/app.js"),
    }
    for what, response in responses.items():
        _check_headers(response, what)
    assert "script-src 'self'" in responses["home page"].headers["content-security-policy"]
    assert "sandbox" in responses["download"].headers["content-security-policy"]  # users' bytes run no script
    docs = responses["docs"]
    inline = re.search(r"<script>(.*?)</script>", docs.text, re.DOTALL)
    assert inline is not None
    digest = base64.b64encode(hashlib.sha256(inline.group(1).encode()).digest()).decode()
    assert f"'sha256-{digest}'" in docs.headers["content-security-policy"]


def test_templates_have_no_inline_script() -> None:
    found: list[str] = []
    for template in sorted(TEMPLATES.glob("*.html")):
        text = template.read_text()
        for match in re.finditer(r"<script\b([^>]*)>", text):
            if "src=" not in match.group(1) and 'type="application/json"' not in match.group(1):
                found.append(f"{template.name}: {match.group(0)}")
        found += [f"{template.name}: {m.group(0)}" for m in re.finditer(r"\s(on[a-z]+|hx-on[:\w-]*)\s*=", text)]
        found += [f"{template.name}: javascript: URL" for _ in re.finditer(r"javascript:", text)]
    assert found == []


# -- 8. /health: details for admins only ---------------------------------------------------


async def test_health_tells_only_admins_the_details(harness: Harness, nats: EmbeddedNatsServer) -> None:
    port = nats.url.rsplit(":", 1)[-1]
    for client in (harness.anonymous, harness.client):
        answer = await client.get("/health")
        assert set(answer.json()) == {"ok", "degraded"}, answer.text
        assert port not in answer.text and "nats" not in answer.text
    admin = (await harness.as_user("root").get("/health")).json()
    assert admin["bus"]["server"].endswith(port) and "services" in admin and "disk" in admin
    home = await harness.anonymous.get("/", headers=HTML)
    assert port not in home.text
