"""API tokens: how they are made and how they are named without being kept.

Only the sha256 of a token is ever stored, sent to the revocation list or logged;
the token itself lives in the client (a file under ARTDAG_HOME, a cookie).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from pathlib import Path

TOKEN_PREFIX = "adt_"
# What a token may look like on the wire: ours (`adt_…`) or an L2's (opaque, printable, bounded).
_TOKEN_RE = re.compile(r"^[A-Za-z0-9._~+/=-]{16,4096}$")
TOKEN_FILE = "token"


def new_token() -> str:
    """A fresh local token: the prefix and 256 random bits, URL-safe."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """The name a token is known by everywhere it is not needed itself (sha256, hex)."""
    return hashlib.sha256(token.encode()).hexdigest()


def well_formed(token: str) -> bool:
    """Whether `token` could be a token at all (cheap check before asking the auth service)."""
    return bool(_TOKEN_RE.match(token))


def user_key(user: str) -> str:
    """The revocation-bucket key for 'every token of this user' (KV keys allow few characters)."""
    return "user." + hashlib.sha256(user.encode()).hexdigest()


def token_key(hashed: str) -> str:
    """The revocation-bucket key for one token hash."""
    return "tok." + hashed


def token_path(home: Path) -> Path:
    """Where the CLI keeps the local user's token: `<home>/token`."""
    return home / TOKEN_FILE


def save_token(home: Path, token: str) -> Path:
    """Write the token to `<home>/token`, readable by its owner only (mode 0600 from creation on)."""
    home.mkdir(parents=True, exist_ok=True)
    path = token_path(home)
    tmp = path.with_name(f".{TOKEN_FILE}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, (token + "\n").encode())
    finally:
        os.close(fd)
    tmp.chmod(0o600)
    tmp.replace(path)
    return path


def load_token(home: Path) -> str | None:
    """The token saved under `home`, if any."""
    try:
        text = token_path(home).read_text().strip()
    except OSError:
        return None
    return text or None
