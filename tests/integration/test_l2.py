"""L2 mode: logging in with a token L2 vouches for, L2 revoking a user, and publishing to L2's inbox
with HTTP Signatures that an independent library (httpsig, from PyPI) verifies."""

from __future__ import annotations

import json
import stat
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from artdag_common.keys import ED25519_FILE, RSA_FILE
from artdag_common.nats_server import EmbeddedNatsServer
from tests.integration.gateway_harness import Harness, gateway_harness
from tests.l2server import L2Server, running_l2

L1_URL = "http://l1.test"
# The revocation list lives in the session's nats-server: each test run's L2 tokens are new.
ALICE = f"l2-token-of-alice-{uuid.uuid4().hex}"
BOB = f"l2-token-of-bob-{uuid.uuid4().hex}"


@pytest.fixture
def l2() -> Iterator[L2Server]:
    with running_l2() as server:
        yield server


@pytest.fixture
async def harness(nats: EmbeddedNatsServer, tmp_path: Path, l2: L2Server) -> AsyncIterator[Harness]:
    async with gateway_harness(
        nats, tmp_path, l2_server=l2.url, l2_domain="l2.test", public_url=L1_URL, auth_cache_s=30.0
    ) as running:
        yield running


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_login_with_an_l2_token_and_l2_revoking_the_user(harness: Harness, l2: L2Server) -> None:
    token = f"l2-token-of-alice-{uuid.uuid4().hex}"  # revoked below: not shared with the other tests
    l2.tokens[token] = {"username": "alice"}
    browser = httpx.AsyncClient(transport=httpx.ASGITransport(app=harness.app), base_url="http://gateway")
    async with browser:
        unknown = await browser.get("/auth", params={"auth_token": "l2-token-nobody-knows-000"})
        assert unknown.status_code == 401 and l2.verify_calls == 1
        login = await browser.get("/auth", params={"auth_token": token})
        assert login.status_code == 303, login.text
        me = (await browser.get("/auth/me")).json()
        assert (me["user"], me["source"]) == ("alice", "l2")
        upload = await browser.post(
            "/cache/upload",
            files={"file": ("a.bin", b"l2 user's")},
            headers={"X-CSRF-Token": browser.cookies["artdag_csrf"]},
        )
        assert upload.status_code == 201 and upload.json()["owner"] == "alice"

        # L2 logs alice out: it tells the L1, signing the request with its key (signed here by httpsig).
        body = json.dumps({"username": "alice"}).encode()
        url = "http://gateway/auth/revoke-user"
        forged = l2.signed_headers("POST", url, body)
        tampered = await harness.anonymous.post(url, content=json.dumps({"username": "bob"}).encode(), headers=forged)
        assert tampered.status_code == 401  # the digest no longer matches the body
        done = await harness.anonymous.post(url, content=body, headers=l2.signed_headers("POST", url, body))
        assert done.status_code == 200, done.text
        assert done.json() == {"username": "alice", "revoked": 1}
        after = await browser.get("/auth/me")
        assert after.status_code == 401 and "revoked" in after.json()["detail"]


async def test_publish_delivers_a_signed_create_that_httpsig_verifies(harness: Harness, l2: L2Server) -> None:
    l2.tokens[ALICE] = {"username": "alice"}
    l2.tokens[BOB] = {"username": "bob"}
    alice = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=harness.app),
        base_url="http://gateway",
        headers=bearer(ALICE),
    )
    bob = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=harness.app),
        base_url="http://gateway",
        headers=bearer(BOB),
    )
    async with alice, bob:
        actor = (await harness.anonymous.get("/actor")).json()
        assert actor["publicKey"]["id"] == f"{L1_URL}/actor#main-key"
        # Every endpoint the actor names on this L1 is served (no inbox it would not answer).
        assert "inbox" not in actor and "outbox" not in actor
        assert (await harness.anonymous.get("/actor/inbox")).status_code == 404
        l2.l1_keys[actor["publicKey"]["id"]] = actor["publicKey"]["publicKeyPem"]  # what L2 would fetch

        png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
        uploaded = await alice.post("/cache/upload", files={"file": ("dot.png", png)})
        assert uploaded.status_code == 201, uploaded.text
        record = uploaded.json()
        cid = record["cid"]
        assert (await harness.anonymous.get(f"/cache/{cid}/raw")).status_code == 404  # not yet public
        assert (await bob.post(f"/cache/{cid}/publish")).status_code == 404  # not bob's

        published = await alice.post(f"/cache/{cid}/publish")
        assert published.status_code == 200, published.text
        assert published.json()["already"] is False
        assert len(l2.deliveries) == 1
        delivery = l2.deliveries[0]
        assert delivery.verified, delivery.reason
        assert delivery.key_id == f"{L1_URL}/actor#main-key"
        assert 'algorithm="rsa-sha256"' in delivery.headers["signature"]
        assert 'headers="(request-target) host date digest"' in delivery.headers["signature"]
        activity = delivery.activity
        assert (activity["type"], activity["actor"]) == ("Create", f"{l2.url}/users/alice")
        obj = activity["object"]
        assert (obj["type"], obj["cid"], obj["name"], obj["mediaType"]) == ("Image", cid, "dot.png", "image/png")
        assert obj["attributedTo"] == f"{l2.url}/users/alice" and obj["url"] == f"{L1_URL}/cache/{cid}/raw"
        assert obj["artdag:owner"] == "@alice@l2.test", "the user's handle on their L2 (L2_DOMAIN)"
        assert "provenance" in obj

        again = await alice.post(f"/cache/{cid}/publish")
        assert again.status_code == 200 and again.json()["already"] is True
        assert again.json()["activity_id"] == published.json()["activity_id"]
        assert len(l2.deliveries) == 1  # idempotent: delivered once

        # Recorded as published: public now, and the deletion rules keep it.
        meta = (await harness.anonymous.get(f"/cache/{cid}/meta")).json()
        assert meta["published"] is True
        assert (await harness.anonymous.get(f"/cache/{cid}/raw")).content == png
        assert cid in [i["cid"] for i in (await harness.anonymous.get("/media")).json()["items"]]
        refused = await alice.delete(f"/cache/{cid}")
        assert refused.status_code == 409 and "published" in refused.json()["detail"]

    # The L1's private keys: files readable by their owner only, never in the database.
    keys = harness.home / "keys"
    for name in (RSA_FILE, ED25519_FILE):
        assert stat.S_IMODE((keys / name).stat().st_mode) == 0o600
    database = (harness.home / "artdag.db").read_bytes()
    assert b"PRIVATE KEY" not in database


async def test_a_forged_signature_is_refused_by_the_inbox(harness: Harness, l2: L2Server) -> None:
    # The inbox really checks: a delivery signed by a key it does not trust is refused, and the L1 says so.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    l2.l1_keys[f"{L1_URL}/actor#main-key"] = (
        stranger.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    l2.tokens[ALICE] = {"username": "alice"}
    alice = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=harness.app),
        base_url="http://gateway",
        headers=bearer(ALICE),
    )
    async with alice:
        cid = (await alice.post("/cache/upload", files={"file": ("x.bin", b"unsigned?")})).json()["cid"]
        refused = await alice.post(f"/cache/{cid}/publish")
        assert refused.status_code == 503 and "refused" in refused.json()["detail"]
        assert [d.verified for d in l2.deliveries] == [False]
        assert (await alice.get(f"/cache/{cid}/meta")).json()["published"] is False
