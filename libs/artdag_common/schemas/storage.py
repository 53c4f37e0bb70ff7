"""Storage providers (cache service): where a user's content is copied besides the local store."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from artdag_common.schemas.common import Message, Viewer

StorageType = Literal["s3", "ipfs", "nats", "local", "pinning"]
ReplicateMode = Literal["none", "outputs", "inputs", "all"]
"""What a provider receives of its owner's content: nothing, run outputs (with their provenance
records), uploads and imports, or both."""


class StorageProviderInput(Message):
    """`POST /storage/add`: a named provider of one type with its configuration."""

    name: str = Field(min_length=1, max_length=128)
    type: StorageType
    config: dict[str, Any] = Field(default_factory=dict)
    replicate: ReplicateMode = Field(default="none", description="which of the owner's content is copied here")
    default: bool = Field(default=False, description="read back from first, and the target of a plain copy")
    owner: str | None = Field(default=None, description="set by the gateway to the caller; ignored from clients")
    viewer: Viewer | None = Field(
        default=None,
        description="who asks, set by the gateway (ignored from clients): decides whether the provider may reach"
        " private addresses or a local directory; None has a plain user's rights",
    )


class StorageProviderPatch(BaseModel):
    """`PATCH /storage/{id}`: a new name and/or config fields to change (masked secrets stay as they are)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=128)
    config: dict[str, Any] | None = None
    replicate: ReplicateMode | None = None
    default: bool | None = None


class StorageProviderUpdate(Message):
    id: str
    patch: StorageProviderPatch
    viewer: Viewer | None = Field(default=None, description="who asks: see StorageProviderInput.viewer")


class StorageProviderRequest(Message):
    id: str
    viewer: Viewer | None = Field(default=None, description="who asks: see StorageProviderInput.viewer")
    keep_copies: bool = Field(default=True, description="on delete: leave the copies in the provider")


class StorageProviderRecord(Message):
    """A provider as the API shows it: secrets masked."""

    id: str
    name: str
    type: StorageType
    config: dict[str, Any]
    replicate: ReplicateMode = "none"
    default: bool = False
    owner: str | None = None
    created_at: float
    updated_at: float


class StorageProviderList(Message):
    providers: list[StorageProviderRecord]


class StorageTestReply(Message):
    """`POST /storage/{id}/test`: did a small object round-trip through the provider?"""

    id: str
    ok: bool
    error: str | None = None
    elapsed_s: float


class StorageTypeRequest(Message):
    type: str


class StorageField(BaseModel):
    name: str
    type: str
    required: bool
    secret: bool = False
    default: Any = None
    description: str = ""


class StorageTypeSchema(Message):
    """`GET /storage/type/{type}`: the fields a provider of this type takes."""

    type: StorageType
    fields: list[StorageField]


class StorageListRequest(Message):
    """`artdag.rpc.cache.storage_list`: every provider."""

    viewer: Viewer | None = Field(default=None, description="only this viewer's providers (admins: all)")
