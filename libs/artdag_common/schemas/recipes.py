"""Stored recipes (the planner's catalogue)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from artdag_common.schemas.common import Message, Viewer


class RecipeInputInfo(BaseModel):
    name: str
    type: str
    description: str = ""
    list: bool = False
    asset: str | None = Field(default=None, description="the named asset bound when the run gives no cid")


class RecipeRecord(Message):
    """A stored recipe (`GET /recipes/{id}`)."""

    recipe_id: str
    name: str
    version: str
    description: str
    inputs: list[RecipeInputInfo]
    text: str
    example: bool = False
    owner: str | None = None
    created_at: float
    recipe_owner: str | None = Field(
        default=None, description="the `owner` the recipe text names (the original engine's key; not the uploader)"
    )
    registry: dict[str, dict[str, Any]] | None = Field(
        default=None, description="the recipe's `registry` of named assets and effects, as written"
    )


class RecipeUpload(Message):
    text: str
    owner: str | None = None


class RecipeRequest(Message):
    recipe_id: str
    viewer: Viewer | None = Field(default=None, description="another user's recipe is not found to this viewer")


class RecipeList(Message):
    recipes: list[RecipeRecord]
    total: int
