"""Tokens: issue (local mode), verify, record what L2 vouched for, revoke. Plain logic over the `tokens` table."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from artdag_common.db.tables import TokenRow
from artdag_common.errors import InvalidInputError, UnauthorizedError
from artdag_common.schemas import IssuedToken, IssueTokenRequest, Principal
from artdag_common.tokens import new_token, token_hash, token_row, well_formed

KNOWN_ROLES = frozenset({"admin"})
KNOWN_SCOPES = frozenset({"l2"})


@dataclass(frozen=True)
class L2Identity:
    """What L2 said about a token it vouches for."""

    user: str
    scopes: tuple[str, ...] = ()
    expires_at: float | None = None


L2Verifier = Callable[[str], Awaitable[L2Identity | None]]


def _principal(row: TokenRow) -> Principal:
    return Principal(
        user=row.username,
        roles=list(row.roles),
        scopes=list(row.scopes),
        token_hash=row.token_hash,
        issued_at=row.created_at,
        expires_at=row.expires_at,
        source="l2" if row.source == "l2" else "local",
    )


class TokenBook:
    """The `tokens` table: only hashes, each with its user, roles, scopes, expiry and revocation."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, default_ttl_s: float) -> None:
        self._sessions = sessions
        self._default_ttl_s = default_ttl_s

    async def issue(self, request: IssueTokenRequest) -> IssuedToken:
        unknown = set(request.roles) - KNOWN_ROLES
        if unknown:
            raise InvalidInputError(f"unknown role {sorted(unknown)[0]!r} (known: admin)", field="roles")
        unknown = set(request.scopes) - KNOWN_SCOPES
        if unknown:
            raise InvalidInputError(f"unknown scope {sorted(unknown)[0]!r} (known: l2)", field="scopes")
        token = new_token()
        ttl_s = request.ttl_s if request.ttl_s is not None else self._default_ttl_s
        row = token_row(token, request.user, request.roles, request.scopes, ttl_s)
        async with self._sessions.begin() as session:
            session.add(row)
        return IssuedToken(token=token, principal=_principal(row))

    async def verify(self, token: str, l2: L2Verifier | None = None) -> Principal:
        """The principal of a valid token; with `l2`, a token unknown here is asked of L2 and recorded."""
        if not well_formed(token):
            raise UnauthorizedError("malformed token")
        hashed = token_hash(token)
        now = time.time()
        async with self._sessions() as session:
            row = await session.get(TokenRow, hashed)
        if row is not None:
            if row.revoked_at is not None:
                raise UnauthorizedError("token revoked")
            if row.expires_at is not None and row.expires_at <= now:
                raise UnauthorizedError("token expired")
            if row.source == "local" or l2 is None:
                return _principal(row)
        if l2 is None:
            raise UnauthorizedError("unknown token")
        identity = await l2(token)  # L2 may have logged the user out since: ask each time the cache misses
        if identity is None:
            raise UnauthorizedError("L2 does not vouch for this token")
        if identity.expires_at is not None and identity.expires_at <= now:
            raise UnauthorizedError("token expired")
        return await self._record_l2(hashed, identity, now)

    async def _record_l2(self, hashed: str, identity: L2Identity, now: float) -> Principal:
        async with self._sessions.begin() as session:
            row = await session.get(TokenRow, hashed)
            if row is None:
                row = TokenRow(
                    token_hash=hashed,
                    username=identity.user,
                    roles=[],
                    scopes=sorted(set(identity.scopes) & KNOWN_SCOPES),
                    source="l2",
                    created_at=now,
                    expires_at=identity.expires_at,
                    revoked_at=None,
                )
                session.add(row)
            elif row.username != identity.user:
                raise UnauthorizedError("L2 names another user for this token")
            return _principal(row)

    async def revoke(self, hashed: str) -> bool:
        """Mark one token revoked; False if this L1 never knew it (it is still put on the list)."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(TokenRow)
                .where(TokenRow.token_hash == hashed, TokenRow.revoked_at.is_(None))
                .values(revoked_at=time.time())
            )
            return bool(getattr(result, "rowcount", 0))

    async def revoke_user(self, user: str) -> list[str]:
        """Mark every token of `user` revoked; their hashes."""
        async with self._sessions.begin() as session:
            rows = (
                await session.execute(select(TokenRow).where(TokenRow.username == user, TokenRow.revoked_at.is_(None)))
            ).scalars()
            hashes = []
            now = time.time()
            for row in rows:
                row.revoked_at = now
                hashes.append(row.token_hash)
            return hashes
