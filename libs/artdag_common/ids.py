"""Identifiers derived from content: canonical JSON, step ids, plan ids, run ids.

One canonical encoding serves every id (the original engine had five). A step id is
sha3-256 over the canonical JSON of the node type, its config, the *ordered* ids
of its inputs, the version of the operation's implementation and, when the
operator sets one, the cluster key: clusters with different keys never share cache
entries.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from artdag_common.errors import InvalidInputError, field_path

ID_RE = re.compile(r"^[0-9a-f]{64}$")
RUN_ID_RE = re.compile(r"^run-[0-9a-f]{32}$")

# Bumped whenever the shape hashed by `step_id` changes, so old ids never collide.
STEP_ID_SCHEME = 1


class _UnhashableError(Exception):
    """A value canonical JSON cannot hold; `where` is filled in on the way out (keys, indices)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.where: list[str | int] = []


def _normalise(value: Any) -> Any:
    # Exact types first: ids are hashed for every step of a plan, and most values are plain.
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float or isinstance(value, float):
        if not math.isfinite(value):
            raise _UnhashableError(f"{value!r} is not allowed in canonical JSON")
        # 1.0 and 1 are the same number: hash them the same way.
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, str | int):  # subclasses: enums and the like
        return value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _UnhashableError(f"object key {key!r} is not a string")
            try:
                out[key] = _normalise(item)
            except _UnhashableError as exc:
                exc.where.insert(0, key)
                raise
        return out
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        items = []
        for i, item in enumerate(value):
            try:
                items.append(_normalise(item))
            except _UnhashableError as exc:
                exc.where.insert(0, i)
                raise
        return items
    raise _UnhashableError(f"value of type {type(value).__name__} cannot be hashed")


def canonical_json(value: Any) -> bytes:
    """UTF-8 JSON with sorted keys, no spaces, shortest round-trip numbers, no NaN."""
    try:
        normal = _normalise(value)
    except _UnhashableError as exc:
        raise InvalidInputError(exc.message, field=field_path(exc.where) or None) from None
    return json.dumps(normal, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
        "utf-8"
    )


def sha3_hex(value: Any) -> str:
    """sha3-256 hex digest of a value's canonical JSON."""
    return hashlib.sha3_256(canonical_json(value)).hexdigest()


def step_id(
    node_type: str,
    config: Mapping[str, Any],
    input_ids: Sequence[str],
    op_version: str,
    cluster_key: str | None = None,
    handoff: str = "deliver",
) -> str:
    """The cache id of one step; the order of `input_ids` is significant.

    `handoff` (how the output is encoded: see `operations.Handoff`) is part of the id
    because it changes the bytes; the default leaves the id as it always was.
    """
    return sha3_hex(_step_body(node_type, config, input_ids, op_version, cluster_key, handoff))


def _step_body(
    node_type: str,
    config: Mapping[str, Any],
    inputs: Sequence[str],
    op_version: str,
    cluster_key: str | None,
    handoff: str = "deliver",
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "scheme": STEP_ID_SCHEME,
        "type": node_type,
        "config": dict(config),
        "inputs": list(inputs),
        "version": op_version,
    }
    if cluster_key:
        body["cluster_key"] = cluster_key
    if handoff != "deliver":
        body["handoff"] = handoff
    return body


def source_step_id(cid: str, cluster_key: str | None = None) -> str:
    """A source is its content: the same bytes give the same id whatever the recipe calls them."""
    return step_id("SOURCE", {"cid": cid}, [], "1", cluster_key)


def analysis_id(input_cid: str, features: Sequence[str], params: Mapping[str, Any], analyzer_version: str) -> str:
    """The cache id of an analysis: input, sorted features, parameters and analyzer version."""
    return sha3_hex(
        {"input": input_cid, "features": sorted(set(features)), "params": dict(params), "version": analyzer_version}
    )


def new_run_id() -> str:
    """A fresh, unique run id (`run-` + 32 hex)."""
    return f"run-{uuid.uuid4().hex}"


def check_run_id(value: str) -> str:
    """Validate a run id taken from outside (a URL, a message)."""
    if not RUN_ID_RE.match(value):
        raise InvalidInputError("not a run id (expected run-<32 hex digits>)", field="run_id")
    return value


def check_step_id(value: str) -> str:
    """Validate a step id taken from outside: exactly 64 lower-case hex digits."""
    if not ID_RE.match(value):
        raise InvalidInputError("not a step id (expected 64 hex digits)", field="step_id")
    return value


def content_key(
    node_type: str,
    config: Mapping[str, Any],
    input_cids: Sequence[str],
    op_version: str,
    cluster_key: str | None = None,
    handoff: str = "deliver",
) -> str:
    """The result key of a step over the *content* of its inputs (early cutoff).

    Two steps whose inputs were made differently but came out byte-identical have the
    same content key, so the second is served from the first's result.
    """
    body = _step_body(node_type, config, input_cids, op_version, cluster_key, handoff)
    return sha3_hex({**body, "by": "content"})


def content_result_key(key: str) -> str:
    """Where a content key's result lives in the `results` bucket (beside step ids)."""
    return f"content.{key}"
