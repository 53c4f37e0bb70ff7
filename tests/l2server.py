"""A small L2 (ActivityPub registry) for the tests: `/auth/verify`, an actor with a key, and an inbox that
accepts only activities whose HTTP Signature verifies — checked with the independent `httpsig` library
from PyPI, never with artdag's own verifier. It also signs (with `httpsig`) what L2 sends to an L1.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import hashlib
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from artdag_common.nats_server import free_port

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # httpsig imports pkg_resources, which warns that it is deprecated
    from httpsig.sign import HeaderSigner
    from httpsig.verify import HeaderVerifier

SIGNED = ["(request-target)", "host", "date", "digest"]


@dataclass
class Delivery:
    """One request to the inbox: what came, and whether its signature verified."""

    activity: dict[str, Any]
    headers: dict[str, str]
    key_id: str | None
    verified: bool
    reason: str = ""


@dataclass
class L2Server:
    """State of the test L2: the tokens it vouches for, the L1 keys it trusts, what reached its inbox."""

    url: str = ""
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    l1_keys: dict[str, str] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    verify_calls: int = 0
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    @property
    def public_pem(self) -> str:
        return (
            self.key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    @property
    def private_pem(self) -> str:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()

    @property
    def key_id(self) -> str:
        return f"{self.url}/actor#main-key"

    def signed_headers(self, method: str, url: str, body: bytes) -> dict[str, str]:
        """Headers that sign a request from L2 (e.g. to an L1's /auth/revoke-user), made with httpsig."""
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        headers = {
            "Host": parts.netloc,
            "Date": email.utils.formatdate(time.time(), usegmt=True),
            "Digest": "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode(),
            "Content-Type": "application/json",
        }
        signer = HeaderSigner(
            self.key_id, self.private_pem, algorithm="rsa-sha256", headers=SIGNED, sign_header="signature"
        )
        signed = signer.sign(headers, method=method, path=parts.path)
        return dict(signed.items())

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/auth/verify")
        async def verify(request: Request) -> JSONResponse:
            self.verify_calls += 1
            header = request.headers.get("authorization", "")
            token = header.removeprefix("Bearer ").strip()
            known = self.tokens.get(token)
            if known is None:
                return JSONResponse({"valid": False}, status_code=401)
            return JSONResponse({"valid": True, **known})

        @app.get("/actor")
        async def actor() -> JSONResponse:
            return JSONResponse(
                {
                    "id": f"{self.url}/actor",
                    "type": "Application",
                    "publicKey": {"id": self.key_id, "owner": f"{self.url}/actor", "publicKeyPem": self.public_pem},
                },
                media_type="application/activity+json",
            )

        @app.post("/inbox")
        async def inbox(request: Request) -> JSONResponse:
            body = await request.body()
            headers = dict(request.headers.items())
            activity = await request.json()
            key_id: str | None = None
            try:
                params = dict(part.split("=", 1) for part in headers.get("signature", "").split(",") if "=" in part)
                key_id = params.get("keyId", "").strip('"') or None
                pem = self.l1_keys.get(key_id or "")
                if pem is None:
                    raise ValueError(f"unknown keyId {key_id!r}")
                digest = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
                if headers.get("digest") != digest:
                    raise ValueError("digest does not match the body")
                verifier = HeaderVerifier(
                    headers,
                    pem,
                    required_headers=SIGNED,
                    method="POST",
                    path=request.url.path,
                    sign_header="signature",
                )
                if not verifier.verify():
                    raise ValueError("signature does not verify")
            except Exception as exc:  # noqa: BLE001 - any failure is a refused delivery, recorded for the test
                self.deliveries.append(Delivery(activity, headers, key_id, verified=False, reason=str(exc)))
                return JSONResponse({"error": str(exc)}, status_code=401)
            self.deliveries.append(Delivery(activity, headers, key_id, verified=True))
            return JSONResponse({"ok": True}, status_code=202)

        return app


@contextlib.contextmanager
def running_l2() -> Iterator[L2Server]:
    """The test L2 on a free loopback port, served by uvicorn in a thread."""
    port = free_port()
    state = L2Server(url=f"http://127.0.0.1:{port}")
    server = uvicorn.Server(uvicorn.Config(state.app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test L2 did not start")
        time.sleep(0.02)
    try:
        yield state
    finally:
        server.should_exit = True
        thread.join(10)
