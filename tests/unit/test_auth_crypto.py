"""Keys, HTTP Signatures, provenance signatures and tokens: the pure parts of auth and federation."""

from __future__ import annotations

import stat
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from artdag_common.httpsig import SignatureError, sign_request, verify_request
from artdag_common.keys import ED25519_FILE, RSA_FILE, load_or_create_keys, sign_record, verify_record
from artdag_common.tokens import load_token, new_token, save_token, token_hash, well_formed
from services.gateway.auth import FailureLimiter

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # httpsig imports the deprecated pkg_resources
    from httpsig.verify import HeaderVerifier


@pytest.fixture(scope="module")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


def test_keys_are_made_once_with_private_files_mode_0600(key_dir: Path) -> None:
    with ThreadPoolExecutor(4) as pool:  # replicas starting at once agree on one key
        made = list(pool.map(lambda _: load_or_create_keys(key_dir), range(4)))
    assert len({k.rsa_public_pem for k in made}) == 1 and len({k.ed25519_public_b64 for k in made}) == 1
    for name in (RSA_FILE, ED25519_FILE):
        assert stat.S_IMODE((key_dir / name).stat().st_mode) == 0o600
    assert sorted(p.name for p in key_dir.iterdir()) == [ED25519_FILE, RSA_FILE]  # no temporary files left
    assert load_or_create_keys(key_dir).ed25519_key_id == made[0].ed25519_key_id


def test_our_signature_verifies_with_httpsig_and_with_ours(key_dir: Path) -> None:
    keys = load_or_create_keys(key_dir)
    body = b'{"type":"Create"}'
    url = "https://l2.example/inbox"
    headers = sign_request("POST", url, body, keys.rsa, "https://l1.example/actor#main-key")
    assert 'headers="(request-target) host date digest"' in headers["Signature"]
    independent = HeaderVerifier(
        headers,
        keys.rsa_public_pem,
        required_headers=["(request-target)", "host", "date", "digest"],
        method="POST",
        path="/inbox",
        sign_header="signature",
    )
    assert independent.verify() is True
    assert verify_request("POST", "/inbox", headers, body, keys.rsa_public_pem) == "https://l1.example/actor#main-key"


def test_our_verifier_refuses_what_it_must(key_dir: Path) -> None:
    keys = load_or_create_keys(key_dir)
    body = b"{}"
    headers = sign_request("POST", "https://l1.example/auth/revoke-user", body, keys.rsa, "k")
    pem = keys.rsa_public_pem
    with pytest.raises(SignatureError, match="Digest"):
        verify_request("POST", "/auth/revoke-user", headers, b'{"username":"x"}', pem)
    with pytest.raises(SignatureError, match="does not verify"):
        verify_request("POST", "/auth/revoke", headers, body, pem)  # another target
    with pytest.raises(SignatureError, match="too far"):
        verify_request("POST", "/auth/revoke-user", headers, body, pem, now=time.time() + 3600)
    with pytest.raises(SignatureError, match="not signed"):
        verify_request("POST", "/auth/revoke-user", {}, body, pem)
    partial = dict(headers, Signature=headers["Signature"].replace("(request-target) host date digest", "date"))
    with pytest.raises(SignatureError, match="does not cover"):
        verify_request("POST", "/auth/revoke-user", partial, body, pem)


def test_provenance_signatures(key_dir: Path) -> None:
    keys = load_or_create_keys(key_dir)
    record = {"run_id": "run-1", "output": {"cid": "QmX", "name": "out"}, "inputs": [], "rendered_by": "alice"}
    signed = {**record, "signature": sign_record(record, keys)}
    assert verify_record(signed, keys.ed25519_public_b64)[0] is True
    assert verify_record(signed)[0] is True
    assert verify_record({**signed, "rendered_by": "mallory"})[0] is False
    assert verify_record(record) == (False, "the record is not signed")
    other = load_or_create_keys(key_dir / "other")
    ok, why = verify_record(signed, other.ed25519_public_b64)
    assert not ok and "other than this server's" in why
    forged = {**record, "rendered_by": "mallory"}
    forged["signature"] = {**sign_record(forged, other), "public_key": keys.ed25519_public_b64}
    assert verify_record(forged, keys.ed25519_public_b64)[0] is False


def test_tokens_are_random_and_saved_owner_only(tmp_path: Path) -> None:
    token = new_token()
    assert token.startswith("adt_") and well_formed(token) and new_token() != token
    assert token_hash(token) != token and len(token_hash(token)) == 64
    assert not well_formed("short") and not well_formed("adt_" + "x" * 40 + " y")
    path = save_token(tmp_path / "home", token)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_token(tmp_path / "home") == token
    assert load_token(tmp_path / "nowhere") is None


def test_failure_limiter_counts_per_client_within_the_window() -> None:
    limiter = FailureLimiter(limit=2, window_s=0.2)
    limiter.fail("a")
    limiter.fail("a")
    with pytest.raises(Exception, match="too many") as info:
        limiter.check("a")
    assert getattr(info.value, "code", None) == "rate_limited"
    limiter.check("b")  # another client is not held back
    time.sleep(0.25)
    limiter.check("a")  # the window moved on
