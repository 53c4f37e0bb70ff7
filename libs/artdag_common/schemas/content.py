"""Stored content (the cache service): records, registration, metadata, listing, deletion, holds, named
assets, and the copies kept at storage providers."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from artdag_common.schemas.common import MAX_LIST_ITEMS, MAX_OFFSET, Message, RpcErrorBody, Viewer, now
from artdag_common.schemas.storage import StorageType

# -- records ---------------------------------------------------------------------------


class ContentOrigin(StrEnum):
    UPLOAD = "upload"
    IMPORT = "import"
    STEP_OUTPUT = "step_output"
    ANALYSIS = "analysis"
    PLAN = "plan"
    PROVENANCE = "provenance"


class ContentRecord(Message):
    """Metadata of stored bytes (the cache service's `content` table)."""

    cid: str
    size: int = Field(ge=0)
    media_type: str
    name: str | None = None
    origin: ContentOrigin
    created_at: float = Field(default_factory=now)
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    owner: str | None = None
    pinned: bool = False
    published: bool = False
    last_access: float | None = None
    provenance_cid: str | None = Field(default=None, description="the cid of this output's provenance record")


class ContentStored(Message):
    """`artdag.event.content.stored`: new bytes are in the content store."""

    record: ContentRecord


class ContentFound(Message):
    """`cache.stat_many`: the records of the cids asked for that exist and the viewer may see, in their order."""

    records: list[ContentRecord]


class UsageRequest(Message):
    """`cache.usage`: what one user holds."""

    user: str = Field(min_length=1, max_length=256)


class UsageReply(Message):
    """The content a user holds (uploaded, imported, or made by their runs): how many items and bytes."""

    items: int
    bytes: int


# -- registration in batches -----------------------------------------------------------

MAX_REGISTER_BATCH = 512
"""Records one `cache.register_many` request carries at most."""


class ContentRecords(Message):
    """`cache.register_many`: records to register, in order."""

    records: list[ContentRecord] = Field(min_length=1, max_length=MAX_REGISTER_BATCH)


class RegisterOutcome(Message):
    """One record's outcome in a `cache.register_many` reply: the stored record, or why not."""

    record: ContentRecord | None = None
    error: RpcErrorBody | None = None


class RegisterManyReply(Message):
    """The outcomes of a `cache.register_many`, in the order of its records."""

    outcomes: list[RegisterOutcome]


# -- content metadata, deletion, media listing -----------------------------------------

TAG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 _.:+-]{0,63}$"
MAX_TAGS = 32
MAX_DESCRIPTION = 4000


def _no_control(value: str, what: str, allow_newlines: bool = False) -> str:
    for ch in value:
        if ord(ch) < 32 or ord(ch) == 127:
            if allow_newlines and ch in "\n\t\r":
                continue
            raise ValueError(f"{what} may not contain control characters")
    return value


class ContentMetaPatch(BaseModel):
    """`PATCH /cache/{cid}/meta`: what to change; a field left out (or null) stays as it is.

    An empty name or description clears it; `tags: []` removes every tag.
    """

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=512)
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION)
    tags: list[str] | None = Field(default=None, max_length=MAX_TAGS)
    pinned: bool | None = None

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str | None) -> str | None:
        return None if value is None else _no_control(value.strip(), "a name")

    @field_validator("description")
    @classmethod
    def _check_description(cls, value: str | None) -> str | None:
        return None if value is None else _no_control(value.strip(), "a description", allow_newlines=True)

    @field_validator("tags")
    @classmethod
    def _check_tags(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        seen: list[str] = []
        for raw in value:
            tag = raw.strip()
            if not re.match(TAG_PATTERN, tag):
                raise ValueError(
                    f"tag {tag[:70]!r} must be 1-64 characters: letters, digits, space and _ . : + -"
                    " (starting with a letter or digit)"
                )
            if tag not in seen:
                seen.append(tag)
        return seen


class ContentMetaUpdate(Message):
    """`artdag.rpc.cache.update_meta`: apply a patch to one cid's metadata."""

    cid: str
    patch: ContentMetaPatch
    viewer: Viewer | None = None


class MediaListRequest(Message):
    """`artdag.rpc.cache.list`: content newest first, optionally of one media type (`video`, `image/png`)."""

    media_type: str | None = Field(default=None, pattern=r"^[a-z]+(/[a-z0-9.+-]+)?$", max_length=128)
    limit: int = Field(default=50, ge=1, le=200)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)
    viewer: Viewer | None = Field(default=None, description="only what this viewer holds, plus published content")


class ContentList(Message):
    items: list[ContentRecord]
    total: int
    limit: int
    offset: int


class ContentDeleted(Message):
    """What `DELETE /cache/{cid}` removed."""

    cid: str
    deleted: bool = True
    blob_deleted: bool


# -- named assets ----------------------------------------------------------------------

ASSET_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"


class AssetRecord(Message):
    """A name for content: a user's own, or shared with everyone by an admin (`owner` None)."""

    name: str
    cid: str
    shared: bool = False
    owner: str | None = None
    created_at: float
    updated_at: float


class AssetList(Message):
    assets: list[AssetRecord]


class AssetInput(Message):
    """`POST /assets`: name content you hold (a name you have already used points to the new cid)."""

    name: str = Field(pattern=ASSET_NAME_PATTERN, description="letters, digits, '_' and '-', like a recipe input")
    cid: str
    shared: bool = Field(default=False, description="an admin's name for everyone (a user's own name wins)")
    viewer: Viewer | None = Field(default=None, description="set by the gateway; ignored from clients")


class AssetRequest(Message):
    """`cache.asset_delete`: the viewer's own name, or (`shared`) a shared one."""

    name: str = Field(pattern=ASSET_NAME_PATTERN)
    shared: bool = False
    viewer: Viewer | None = None


class AssetListRequest(Message):
    viewer: Viewer | None = None


class AssetResolveRequest(Message):
    """`cache.asset_resolve`: the cids `owner`'s asset names stand for (their own first, then shared)."""

    names: list[str] = Field(max_length=MAX_LIST_ITEMS)
    owner: str | None = None


class AssetResolved(Message):
    cids: dict[str, str] = Field(description="name → cid, for the names that are known")


# -- copies at storage providers -------------------------------------------------------


LocationState = Literal["pending", "stored", "failed", "removing"]


class ContentLocation(BaseModel):
    """One copy of content at a storage provider, and how it stands."""

    provider_id: str
    provider_name: str
    type: StorageType
    state: LocationState
    error: str | None = Field(default=None, description="why the last attempt failed (state failed or pending)")
    attempts: int = 0
    updated_at: float


class ContentLocations(Message):
    """`cache.locations`: where content is kept besides the local store."""

    cid: str
    local: bool = Field(description="whether the local content store holds the bytes now")
    locations: list[ContentLocation]


class ContentMeta(ContentRecord):
    """`GET /cache/{cid}/meta`: the record, and where its bytes are kept."""

    local: bool = True
    locations: list[ContentLocation] = Field(default_factory=list)


class CopyRequest(Message):
    """`cache.copy` (`POST /cache/{cid}/locations`): copy content the viewer holds to one of their providers."""

    cid: str
    provider_id: str | None = Field(default=None, description="the viewer's default provider when omitted")
    viewer: Viewer | None = None


class ReplicationTask(Message):
    """`artdag.task.replicate`: copy (`store`) or remove one cid at one provider; the work queue keeps it."""

    cid: str
    provider_id: str
    action: Literal["store", "remove"] = "store"
    ref: str | None = Field(default=None, description="the provider's own name for the copy (a pin request id)")


# -- holds: content a user may see and change ------------------------------------------


class HoldRequest(Message):
    """`artdag.rpc.cache.hold`: let `user` see and change these cids (what their run made); idempotent."""

    cids: list[str] = Field(max_length=10_000)
    user: str = Field(min_length=1, max_length=256)


class HoldReply(Message):
    held: int = Field(description="how many holds were new")
