"""HTTP Signatures as ActivityPub servers use them (draft-cavage, the form Mastodon signs and verifies).

`rsa-sha256` over `(request-target) host date digest`, with a `Digest: SHA-256=…` of the body.
Used to sign what the L1 delivers to its L2's inbox and to check requests that claim to come from L2.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import re
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SIGNED_HEADERS = ("(request-target)", "host", "date", "digest")
# How far a request's Date may be from now before its signature is refused (replays).
MAX_SKEW_S = 300.0
_PARAM_RE = re.compile(r'(\w+)="([^"]*)"')


class SignatureError(ValueError):
    """A request's HTTP Signature is missing, malformed or does not verify."""


def digest_header(body: bytes) -> str:
    """`SHA-256=<base64>` of the body."""
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()


def _signing_string(method: str, path: str, headers: Mapping[str, str], names: list[str]) -> bytes:
    lower = {k.lower(): v for k, v in headers.items()}
    lines = []
    for name in names:
        if name == "(request-target)":
            lines.append(f"(request-target): {method.lower()} {path}")
        elif name in lower:
            lines.append(f"{name}: {lower[name]}")
        else:
            raise SignatureError(f"the signed header {name!r} is missing")
    return "\n".join(lines).encode()


def sign_request(
    method: str, url: str, body: bytes, key: rsa.RSAPrivateKey, key_id: str, *, now: float | None = None
) -> dict[str, str]:
    """The headers (Host, Date, Digest, Signature) that sign a request to `url` with `key`."""
    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    headers = {
        "Host": parts.netloc,
        "Date": email.utils.formatdate(now if now is not None else time.time(), usegmt=True),
        "Digest": digest_header(body),
    }
    names = list(SIGNED_HEADERS)
    signature = key.sign(_signing_string(method, path, headers, names), padding.PKCS1v15(), hashes.SHA256())
    headers["Signature"] = (
        f'keyId="{key_id}",algorithm="rsa-sha256",headers="{" ".join(names)}",'
        f'signature="{base64.b64encode(signature).decode()}"'
    )
    return headers


def parse_signature(value: str) -> dict[str, str]:
    """The parameters of a `Signature` header (keyId, algorithm, headers, signature)."""
    params = dict(_PARAM_RE.findall(value))
    if "keyId" not in params or "signature" not in params:
        raise SignatureError("the Signature header needs keyId and signature")
    return params


def verify_request(
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    public_pem: str,
    *,
    now: float | None = None,
    required: tuple[str, ...] = SIGNED_HEADERS,
) -> str:
    """Check a request's signature against `public_pem`; returns its keyId or raises `SignatureError`."""
    lower = {k.lower(): v for k, v in headers.items()}
    if "signature" not in lower:
        raise SignatureError("the request is not signed")
    params = parse_signature(lower["signature"])
    if params.get("algorithm", "rsa-sha256") not in ("rsa-sha256", "hs2019"):
        raise SignatureError(f"unsupported algorithm {params.get('algorithm')!r}")
    names = params.get("headers", "date").lower().split()
    missing = [n for n in required if n not in names]
    if missing:
        raise SignatureError(f"the signature does not cover {', '.join(missing)}")
    if "digest" in names and lower.get("digest") != digest_header(body):
        raise SignatureError("the Digest header does not match the body")
    date = lower.get("date")
    if date is None:
        raise SignatureError("the Date header is missing")
    try:
        sent = email.utils.parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError):
        raise SignatureError("the Date header is malformed") from None
    if abs((now if now is not None else time.time()) - sent) > MAX_SKEW_S:
        raise SignatureError("the Date header is too far from now")
    key = serialization.load_pem_public_key(public_pem.encode())
    if not isinstance(key, rsa.RSAPublicKey):
        raise SignatureError("the signer's key is not RSA")
    try:
        signature = base64.b64decode(params["signature"], validate=True)
        key.verify(signature, _signing_string(method, path, headers, names), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        raise SignatureError("the signature does not verify") from None
    return params["keyId"]
