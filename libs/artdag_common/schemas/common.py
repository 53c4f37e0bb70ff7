"""What every message shares: the base `Message` with its schema version `v`, the caller (`Viewer`),
look-ups by cid, paging limits, health, and the envelope of every RPC reply.

The other modules of this package build on this one; it imports none of them.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Message(BaseModel):
    """Base of every payload: JSON on the wire, schema version `v`."""

    model_config = ConfigDict(extra="ignore")

    v: Literal[1] = 1


def now() -> float:
    """Wall-clock seconds, the timestamp every event carries."""
    return time.time()


class Viewer(BaseModel):
    """Who asks, for the services that filter by owner: a user name (None: anonymous, who sees only what is
    published) and whether they hold the admin role.

    A request without a viewer is the system's own (another service): it sees everything.
    """

    user: str | None = Field(default=None, min_length=1, max_length=256, description="None: anonymous")
    admin: bool = False

    def may_see(self, owner: str | None) -> bool:
        """Whether something owned by `owner` belongs to this viewer (admins see all)."""
        return self.admin or (self.user is not None and owner == self.user)


class CidRequest(Message):
    cid: str
    viewer: Viewer | None = None


MAX_LIST_ITEMS = 1000
"""How many cids a recipe's list input may bind, and a batched look-up (`CidsRequest`) may carry."""


class CidsRequest(Message):
    """`cache.stat_many`, `analyzer.probe_many`: many cids in one request (a list input's items)."""

    cids: list[str] = Field(min_length=1, max_length=MAX_LIST_ITEMS)
    viewer: Viewer | None = None


MAX_OFFSET = 1_000_000
"""How far into a list a page may start: past it a request is refused (422), never a scan or an overflow."""


class HealthRequest(Message):
    pass


class HealthReply(Message):
    service: str
    instance: str
    version: str
    ok: bool = True
    uptime_s: float
    details: dict[str, Any] = Field(default_factory=dict)


class RpcErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class RpcReply(Message):
    """The envelope of every reply: `ok` with `data`, or an `error` with a typed code."""

    ok: bool
    data: dict[str, Any] | None = None
    error: RpcErrorBody | None = None
