"""Table definitions. Each table names the one service that writes it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, Index, Integer, String, Text, false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base holding the metadata Alembic migrates."""


class Content(Base):
    """Stored bytes and what is known about them. Owner: cache service."""

    __tablename__ = "content"

    cid: Mapped[str] = mapped_column(String(128), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str] = mapped_column(String(128))
    name: Mapped[str | None] = mapped_column(String(512), nullable=True)
    origin: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[float] = mapped_column(Float)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    owner: Mapped[str | None] = mapped_column(String(256), nullable=True)
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    published: Mapped[bool] = mapped_column(Boolean, default=False)
    last_access: Mapped[float | None] = mapped_column(Float, nullable=True)
    provenance_cid: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # The bytes were dropped from the local store to make room: only storage providers hold them.
    offloaded: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    __table_args__ = (
        Index("ix_content_created_at", "created_at"),
        Index("ix_content_last_access", "last_access"),
    )


class ContentRef(Base):
    """Which runs use a cid, and how (input, output, intermediate, provenance). Owner: cache service."""

    __tablename__ = "content_refs"
    __table_args__ = (Index("ix_content_refs_run_id", "run_id"),)

    cid: Mapped[str] = mapped_column(String(128), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), primary_key=True)


class StorageProvider(Base):
    """A configured storage backend; secret config values are encrypted. Owner: cache service."""

    __tablename__ = "storage_providers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(16))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    owner: Mapped[str | None] = mapped_column(String(256), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    replicate: Mapped[str] = mapped_column(String(16), default="none", server_default="none")
    is_default: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Added by an admin: may reach what only admins may (private addresses, a local directory).
    privileged: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class ContentLocation(Base):
    """A copy of content at a storage provider and how it stands. Owner: cache service."""

    __tablename__ = "content_locations"
    __table_args__ = (Index("ix_content_locations_provider", "provider_id"),)

    cid: Mapped[str] = mapped_column(String(128), primary_key=True)
    provider_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    ref: Mapped[str | None] = mapped_column(String(256), nullable=True)  # a pin request id
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    updated_at: Mapped[float] = mapped_column(Float)


class Run(Base):
    """A submitted run and its outcome. Owner: planner."""

    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_created_at", "created_at"), Index("ix_runs_owner", "owner"))

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    recipe_id: Mapped[str] = mapped_column(String(128))
    recipe_name: Mapped[str] = mapped_column(String(256))
    recipe_text: Mapped[str] = mapped_column(Text)
    plan_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)
    plan: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    state: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    output_cid: Mapped[str | None] = mapped_column(String(128), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    owner: Mapped[str | None] = mapped_column(String(256), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    steps_total: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    steps_done: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    steps_cached: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    steps_failed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class RecipeRow(Base):
    """A stored recipe, addressed by the cid of its canonical form. Owner: planner."""

    __tablename__ = "recipes"
    __table_args__ = (Index("ix_recipes_created_at", "created_at"),)

    recipe_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    version: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)
    example: Mapped[bool] = mapped_column(Boolean, default=False)
    owner: Mapped[str | None] = mapped_column(String(256), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)


class RecipeHolder(Base):
    """Which users uploaded a recipe (the same text from two users is one recipe, held by both). Owner: planner."""

    __tablename__ = "recipe_holders"
    __table_args__ = (Index("ix_recipe_holders_username", "username"),)

    recipe_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    username: Mapped[str] = mapped_column(String(256), primary_key=True)
    created_at: Mapped[float] = mapped_column(Float)


class PlanRow(Base):
    """A plan made by `POST /api/plan`, kept so that `POST /api/execute` can run it. Owner: planner."""

    __tablename__ = "plans"

    plan_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    recipe_text: Mapped[str] = mapped_column(Text)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)
    plan: Mapped[dict[str, Any]] = mapped_column(JSON)
    owner: Mapped[str | None] = mapped_column(String(256), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)


class TokenRow(Base):
    """A token known to this L1, by its sha256 only (local tokens issued here, L2 tokens seen). Owner: auth."""

    __tablename__ = "tokens"
    __table_args__ = (Index("ix_tokens_username", "username"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(256))
    roles: Mapped[list[str]] = mapped_column(JSON)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class ContentHolder(Base):
    """Which users hold a cid (uploaded, imported or made it): they see and change it. Owner: cache service."""

    __tablename__ = "content_holders"
    __table_args__ = (Index("ix_content_holders_username", "username"),)

    cid: Mapped[str] = mapped_column(String(128), primary_key=True)
    username: Mapped[str] = mapped_column(String(256), primary_key=True)
    created_at: Mapped[float] = mapped_column(Float)


class PublicationRow(Base):
    """Content announced to L2 (an ActivityPub Create): kept, so publishing is idempotent. Owner: cache service."""

    __tablename__ = "publications"

    cid: Mapped[str] = mapped_column(String(128), primary_key=True)
    username: Mapped[str] = mapped_column(String(256))
    activity_id: Mapped[str] = mapped_column(String(512))
    object_id: Mapped[str] = mapped_column(String(512))
    inbox: Mapped[str] = mapped_column(String(512))
    activity: Mapped[dict[str, Any]] = mapped_column(JSON)
    published_at: Mapped[float] = mapped_column(Float)


class AssetRow(Base):
    """A name for content, a user's own or (scope "") shared by an admin. Owner: cache service."""

    __tablename__ = "assets"

    scope: Mapped[str] = mapped_column(String(256), primary_key=True)  # the owner's name; "" for shared
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    cid: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
