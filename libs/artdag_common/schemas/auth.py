"""Tokens and who holds them (auth service)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from artdag_common.schemas.common import Message, Viewer


class Principal(Message):
    """Who a valid token belongs to, as the auth service answers `verify`."""

    user: str = Field(min_length=1, max_length=256)
    roles: list[str] = Field(default_factory=list, description="e.g. admin")
    scopes: list[str] = Field(default_factory=list, description="e.g. l2: may call the L2-only routes")
    token_hash: str = Field(description="sha256 of the token, hex: how revocations name it")
    issued_at: float = Field(description="when this L1 first saw (local: issued) the token")
    expires_at: float | None = None
    source: Literal["local", "l2"] = "local"

    @property
    def admin(self) -> bool:
        """Whether the principal holds the `admin` role."""
        return "admin" in self.roles

    def viewer(self) -> Viewer:
        """The principal as the services' ownership filters take it."""
        return Viewer(user=self.user, admin=self.admin)


class VerifyTokenRequest(Message):
    """`artdag.rpc.auth.verify`: is this token valid, and whose is it? (The bus is private; never log this.)"""

    token: str = Field(min_length=1, max_length=4096)


class IssueTokenRequest(Message):
    """`artdag.rpc.auth.issue` (local mode): a new token for `user`."""

    user: str = Field(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9_.@-]+$")
    roles: list[str] = Field(default_factory=list)
    scopes: list[str] = Field(default_factory=list)
    ttl_s: float | None = Field(default=None, gt=0)


class IssuedToken(Message):
    """A new token, shown once; only its hash is kept."""

    token: str
    principal: Principal


class RevokeTokenRequest(Message):
    """`artdag.rpc.auth.revoke`: revoke one token, named by its hash."""

    token_hash: str = Field(pattern=r"^[0-9a-f]{64}$")


class RevokeUserRequest(Message):
    """`artdag.rpc.auth.revoke_user`: revoke every token of one user."""

    user: str = Field(min_length=1, max_length=256)


class RevokeReply(Message):
    revoked: int = Field(description="how many token hashes were added to the revocation list")
