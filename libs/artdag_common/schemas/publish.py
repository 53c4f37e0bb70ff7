"""Publication to L2 (cache service) and the L1's public keys."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from artdag_common.schemas.common import Message, Viewer


class PublishRequest(Message):
    """`artdag.rpc.cache.publish`: announce content to L2 as an ActivityPub `Create`."""

    cid: str
    viewer: Viewer


class Publication(Message):
    """A recorded publication: what was sent to which inbox, and when."""

    cid: str
    user: str
    activity_id: str
    object_id: str
    inbox: str
    published_at: float
    activity: dict[str, Any]
    already: bool = Field(default=False, description="true when it had been published before (idempotent)")


class L1KeysRequest(Message):
    """`artdag.rpc.cache.keys`: the L1's public keys."""


class L1Keys(Message):
    """The L1's public keys: RSA (HTTP Signatures) as PEM, Ed25519 (provenance) raw base64."""

    rsa_public_pem: str
    ed25519_public: str
    ed25519_key_id: str
