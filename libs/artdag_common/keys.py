"""The L1's own keys: RSA for HTTP Signatures (what ActivityPub servers verify), Ed25519 for provenance.

Made on first start under the key directory (default `<home>/keys`), private key files
mode 0600 from creation on, never stored in a database. Any number of replicas may start
at once: the file that wins the exclusive create is the key.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

RSA_FILE = "l1_rsa.pem"
ED25519_FILE = "l1_ed25519.pem"


def _write_exclusive(path: Path, data: bytes) -> bool:
    """Create `path` with `data`, mode 0600; False if another process made it first."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # atomic and refuses to overwrite: the first replica's key wins
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink()


def _pem(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _load_private(path: Path) -> Any:
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def ed25519_key_id(public: ed25519.Ed25519PublicKey) -> str:
    """A key's fingerprint: sha256 of the raw public key, hex."""
    return hashlib.sha256(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).hexdigest()


@dataclass(frozen=True)
class L1Keys:
    """The L1's signing keys."""

    rsa: rsa.RSAPrivateKey
    ed25519: ed25519.Ed25519PrivateKey

    @property
    def rsa_public_pem(self) -> str:
        """The RSA public key as PEM (SubjectPublicKeyInfo), the form ActivityPub actors publish."""
        return (
            self.rsa.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    @property
    def ed25519_public_b64(self) -> str:
        """The raw Ed25519 public key, base64."""
        raw = self.ed25519.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return base64.b64encode(raw).decode()

    @property
    def ed25519_key_id(self) -> str:
        """The Ed25519 key's fingerprint."""
        return ed25519_key_id(self.ed25519.public_key())


def load_or_create_keys(key_dir: Path) -> L1Keys:
    """The keys under `key_dir`, made (once, race-free) if they are not there yet."""
    rsa_path, ed_path = key_dir / RSA_FILE, key_dir / ED25519_FILE
    if not rsa_path.exists():
        _write_exclusive(rsa_path, _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    if not ed_path.exists():
        _write_exclusive(ed_path, _pem(ed25519.Ed25519PrivateKey.generate()))
    for path in (rsa_path, ed_path):
        with contextlib.suppress(PermissionError):  # keep mode 0600 even if someone loosened it
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)
    rsa_key, ed_key = _load_private(rsa_path), _load_private(ed_path)
    if not isinstance(rsa_key, rsa.RSAPrivateKey) or not isinstance(ed_key, ed25519.Ed25519PrivateKey):
        raise ValueError(f"the key files under {key_dir} are not an RSA and an Ed25519 private key")
    return L1Keys(rsa=rsa_key, ed25519=ed_key)


# -- provenance signatures --------------------------------------------------------------------


def canonical_json(document: dict[str, Any]) -> bytes:
    """Sorted keys, no spaces, UTF-8: the bytes a provenance signature covers."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signed_payload(record: dict[str, Any]) -> bytes:
    """What a provenance signature covers: the record without its `signature` field."""
    return canonical_json({k: v for k, v in record.items() if k != "signature"})


def sign_record(record: dict[str, Any], keys: L1Keys) -> dict[str, str]:
    """The `signature` field for a provenance record (as JSON)."""
    value = keys.ed25519.sign(signed_payload(record))
    return {
        "alg": "ed25519",
        "key_id": keys.ed25519_key_id,
        "public_key": keys.ed25519_public_b64,
        "value": base64.b64encode(value).decode(),
    }


def verify_record(record: dict[str, Any], trusted_public_b64: str | None = None) -> tuple[bool, str]:
    """Check a provenance record's signature; `(ok, why)`.

    With `trusted_public_b64` (the L1's published key) the record must be signed by that key;
    without it only the record's own embedded key is used (integrity, not origin).
    """
    sig = record.get("signature")
    if not isinstance(sig, dict):
        return False, "the record is not signed"
    if sig.get("alg") != "ed25519":
        return False, f"unknown signature algorithm {sig.get('alg')!r}"
    try:
        public_raw = base64.b64decode(str(sig["public_key"]), validate=True)
        value = base64.b64decode(str(sig["value"]), validate=True)
        public = ed25519.Ed25519PublicKey.from_public_bytes(public_raw)
    except (KeyError, ValueError):
        return False, "the signature field is malformed"
    if trusted_public_b64 is not None and str(sig["public_key"]) != trusted_public_b64:
        return False, "signed by a key other than this server's"
    if sig.get("key_id") != ed25519_key_id(public):
        return False, "the key id does not match the key"
    try:
        public.verify(value, signed_payload(record))
    except InvalidSignature:
        return False, "the signature does not match the record"
    return True, f"signed by key {sig['key_id'][:16]}…"
