"""The node types a recipe may use: each one's typed config, input arity and version.

The config model is the single source of truth for a node's keys, defaults and
ranges; the version is part of every step id, so changing what an operation
renders means bumping its version here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.metadata import version as package_version
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_COLOUR_RE = re.compile(r"^(#[0-9a-fA-F]{6}|black|white|red|green|blue|gray)$")

# Rendered bytes depend on the FFmpeg/x264 build inside the PyAV wheel.
MEDIA_ENGINE = f"av-{package_version('av')}"


class NodeConfig(BaseModel):
    """Base of every config model: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceConfig(NodeConfig):
    """A recipe input, bound to content by cid when the run is submitted."""

    input: str | None = Field(default=None, description="the recipe input this source reads")


class ResizeConfig(NodeConfig):
    """Scale a video to `width`×`height` (even numbers, for yuv420p)."""

    width: int = Field(ge=2, le=7680)
    height: int = Field(ge=2, le=4320)
    mode: Literal["fit", "fill", "stretch", "pad"] = "fit"
    background: str = "black"

    @field_validator("width", "height")
    @classmethod
    def _even(cls, value: int) -> int:
        if value % 2:
            raise ValueError("must be an even number of pixels")
        return value

    @field_validator("background")
    @classmethod
    def _colour(cls, value: str) -> str:
        if not _COLOUR_RE.match(value):
            raise ValueError("must be #rrggbb or one of black, white, red, green, blue, gray")
        return value


@dataclass(frozen=True)
class Operation:
    """What the planner and executor agree on about one node type."""

    node_type: str
    config_model: type[NodeConfig]
    version: str
    min_inputs: int
    max_inputs: int
    description: str

    @property
    def op_version(self) -> str:
        """The version mixed into step ids: the operation's own and the media engine's."""
        return f"{self.version}+{MEDIA_ENGINE}"

    def parse_config(self, raw: dict[str, Any]) -> NodeConfig:
        return self.config_model.model_validate(raw)


OPERATIONS: dict[str, Operation] = {
    op.node_type: op
    for op in (
        Operation("SOURCE", SourceConfig, "1", 0, 0, "a recipe input"),
        Operation("RESIZE", ResizeConfig, "1", 1, 1, "scale a video: fit, fill, stretch or pad"),
    )
}


def get_operation(node_type: str) -> Operation | None:
    """The operation for a node type name (case-insensitive), or None."""
    return OPERATIONS.get(node_type.upper())
