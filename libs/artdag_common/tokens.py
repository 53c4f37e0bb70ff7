"""API tokens: how they are made and how they are named without being kept.

Only the sha256 of a token is ever stored, sent to the revocation list or logged;
the token itself lives in the client (a file under ARTDAG_HOME, a cookie).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the database layer only where rows are made: the client wheel ships this module alone
    from artdag_common.db.tables import TokenRow

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
    tmp = path.with_name(f".{TOKEN_FILE}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
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


def token_row(token: str, user: str, roles: list[str], scopes: list[str], ttl_s: float) -> TokenRow:
    """The `tokens` row for a new local token: its hash, never the token."""
    from artdag_common.db.tables import TokenRow

    now = time.time()
    return TokenRow(
        token_hash=token_hash(token),
        username=user,
        roles=sorted(set(roles)),
        scopes=sorted(set(scopes)),
        source="local",
        created_at=now,
        expires_at=now + ttl_s,
        revoked_at=None,
    )


async def issue_local_token(
    database_url: str, user: str, *, roles: list[str], scopes: list[str] | None = None, ttl_s: float
) -> str:
    """Make a local token for `user` straight in the database (the CLI's `artdag token create`)."""
    from artdag_common.db import make_engine, migrate, session_factory

    await migrate(database_url)
    engine = make_engine(database_url)
    try:
        token = new_token()
        async with session_factory(engine).begin() as session:
            session.add(token_row(token, user, roles, scopes or [], ttl_s))
        return token
    finally:
        await engine.dispose()


async def local_token_valid(database_url: str, token: str) -> bool:
    """Whether `token` is a known, unrevoked, unexpired local token."""
    from artdag_common.db import make_engine, session_factory
    from artdag_common.db.tables import TokenRow

    engine = make_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            row = await session.get(TokenRow, token_hash(token))
    finally:
        await engine.dispose()
    return row is not None and row.revoked_at is None and (row.expires_at is None or row.expires_at > time.time())


def local_user() -> str:
    """The name of the user running this process, as a token's user (`local` if it has none usable)."""
    import getpass

    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        return "local"
    cleaned = re.sub(r"[^A-Za-z0-9_.@-]", "", name)[:256]
    return cleaned or "local"


def client_token(home: Path | None = None) -> str | None:
    """The token a client should send: `ARTDAG_TOKEN`, else `<ARTDAG_HOME or ~/.artdag>/token`."""
    explicit = os.environ.get("ARTDAG_TOKEN")
    if explicit:
        return explicit.strip()
    if home is None:
        home = Path(os.environ.get("ARTDAG_HOME", "~/.artdag")).expanduser()
    return load_token(home)
