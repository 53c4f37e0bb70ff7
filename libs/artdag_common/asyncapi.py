"""The AsyncAPI 3.0 document of every NATS subject artdag uses, from `subjects` and the pydantic models.

`python -m artdag_common.asyncapi docs/asyncapi.json` writes it (`make asyncapi`); a
test checks that the committed file is current and that every `rpc.serve` in the
services is listed in `RPC` below.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from artdag_common import __version__, subjects
from artdag_common.codec import COMPRESS_ABOVE
from artdag_common.schemas import (
    AnalysisProgress,
    AnalysisReply,
    AnalyzeRequest,
    AssetInput,
    AssetList,
    AssetListRequest,
    AssetRecord,
    AssetRequest,
    AssetResolved,
    AssetResolveRequest,
    CidRequest,
    CidsRequest,
    ContentDeleted,
    ContentFound,
    ContentList,
    ContentLocations,
    ContentMetaUpdate,
    ContentRecord,
    ContentRecords,
    ContentStored,
    CopyRequest,
    ExecuteRequest,
    HealthReply,
    HealthRequest,
    HoldReply,
    HoldRequest,
    IssuedToken,
    IssueTokenRequest,
    L1Keys,
    L1KeysRequest,
    ListRunsRequest,
    MediaInfo,
    MediaListRequest,
    Plan,
    PlanReply,
    PlanRequest,
    Principal,
    ProbeManyReply,
    Publication,
    PublishRequest,
    RecipeList,
    RecipeRecord,
    RecipeRequest,
    RecipeUpload,
    RegisterManyReply,
    ReplicationTask,
    RevokeReply,
    RevokeTokenRequest,
    RevokeUserRequest,
    RpcReply,
    RunAnalysis,
    RunEvent,
    RunList,
    RunRecipeRequest,
    RunRequest,
    RunState,
    RunStatus,
    StepEvent,
    StepTask,
    StorageListRequest,
    StorageProviderInput,
    StorageProviderList,
    StorageProviderRecord,
    StorageProviderRequest,
    StorageProviderUpdate,
    StorageTestReply,
    StorageTypeRequest,
    StorageTypeSchema,
    SubmitRunReply,
    SubmitRunRequest,
    UsageReply,
    UsageRequest,
    VerifyTokenRequest,
)


@dataclass(frozen=True)
class Rpc:
    """One request/reply verb: `artdag.rpc.<service>.<verb>`, its request and the `data` of its reply."""

    service: str
    verb: str
    request: type[BaseModel]
    reply: type[BaseModel]
    summary: str


# Every verb a service serves. `health` is served by every service (the runtime registers it).
RPC: tuple[Rpc, ...] = (
    *(Rpc(s, "health", HealthRequest, HealthReply, "liveness and counters of one replica") for s in subjects.SERVICES),
    Rpc("planner", "submit", SubmitRunRequest, SubmitRunReply, "validate a recipe and its inputs, start a run"),
    Rpc("planner", "get_run", RunRequest, RunState, "a run's live state"),
    Rpc("planner", "list_runs", ListRunsRequest, RunList, "runs, newest first"),
    Rpc("planner", "get_plan", RunRequest, Plan, "a run's execution plan"),
    Rpc("planner", "get_analysis", RunRequest, RunAnalysis, "the analyses a run used"),
    Rpc("planner", "cancel", RunRequest, RunState, "cancel a run and delete its record"),
    Rpc("planner", "dry_run", PlanRequest, PlanReply, "the plan a run would follow, cached steps marked"),
    Rpc("planner", "execute", ExecuteRequest, SubmitRunReply, "run a plan made by dry_run"),
    Rpc("planner", "recipe_upload", RecipeUpload, RecipeRecord, "store a recipe"),
    Rpc("planner", "recipe_get", RecipeRequest, RecipeRecord, "a stored recipe"),
    Rpc("planner", "recipe_list", ListRunsRequest, RecipeList, "stored recipes"),
    Rpc("planner", "recipe_delete", RecipeRequest, RecipeRecord, "delete a stored recipe"),
    Rpc("planner", "recipe_run", RunRecipeRequest, SubmitRunReply, "run a stored recipe"),
    Rpc("analyzer", "probe", CidRequest, MediaInfo, "what a media file holds (streams, duration, GOPs)"),
    Rpc("analyzer", "probe_many", CidsRequest, ProbeManyReply, "probe many at once (an input list); an outcome each"),
    Rpc("analyzer", "analyze", AnalyzeRequest, AnalysisReply, "extract features, cached by analysis id"),
    Rpc("planner", "get_run_recipe", RunRequest, RecipeUpload, "the recipe text a run was submitted with"),
    Rpc("auth", "verify", VerifyTokenRequest, Principal, "who a token belongs to (refused: expired, revoked, unknown)"),
    Rpc("auth", "issue", IssueTokenRequest, IssuedToken, "a new local token (local mode only)"),
    Rpc("auth", "revoke", RevokeTokenRequest, RevokeReply, "revoke one token, on every gateway"),
    Rpc("auth", "revoke_user", RevokeUserRequest, RevokeReply, "revoke every token of a user"),
    Rpc("cache", "register", ContentRecord, ContentRecord, "record stored content's metadata"),
    Rpc("cache", "hold", HoldRequest, HoldReply, "record that a user holds content"),
    Rpc("cache", "keys", L1KeysRequest, L1Keys, "the L1's public keys (HTTP Signatures, provenance)"),
    Rpc("cache", "publish", PublishRequest, Publication, "publish content to L2 (idempotent)"),
    Rpc("cache", "register_many", ContentRecords, RegisterManyReply, "record many at once; an outcome each"),
    Rpc("cache", "stat", CidRequest, ContentRecord, "content metadata"),
    Rpc("cache", "stat_many", CidsRequest, ContentFound, "the metadata of many at once: those that exist and show"),
    Rpc("cache", "usage", UsageRequest, UsageReply, "how many items and bytes a user holds (quotas)"),
    Rpc("cache", "access", CidRequest, ContentRecord, "content metadata, marking it used; read back if not local"),
    Rpc("cache", "restore", CidRequest, ContentRecord, "read content back from a storage provider into the store"),
    Rpc("cache", "locations", CidRequest, ContentLocations, "where content is kept: local, and copies at providers"),
    Rpc("cache", "copy", CopyRequest, ContentLocations, "copy content to one of the viewer's providers"),
    Rpc("cache", "asset_add", AssetInput, AssetRecord, "name content (a user's own name, or a shared one)"),
    Rpc("cache", "asset_list", AssetListRequest, AssetList, "the viewer's asset names and the shared ones"),
    Rpc("cache", "asset_delete", AssetRequest, AssetRecord, "forget an asset name"),
    Rpc("cache", "asset_resolve", AssetResolveRequest, AssetResolved, "the cids a user's asset names stand for"),
    Rpc("cache", "update_meta", ContentMetaUpdate, ContentRecord, "change name, description, tags, pinned"),
    Rpc("cache", "list", MediaListRequest, ContentList, "content newest first"),
    Rpc("cache", "delete", CidRequest, ContentDeleted, "delete content (refused while it is in use)"),
    Rpc("cache", "storage_list", StorageListRequest, StorageProviderList, "storage providers"),
    Rpc("cache", "storage_add", StorageProviderInput, StorageProviderRecord, "add a storage provider"),
    Rpc("cache", "storage_get", StorageProviderRequest, StorageProviderRecord, "one storage provider"),
    Rpc("cache", "storage_update", StorageProviderUpdate, StorageProviderRecord, "change a storage provider"),
    Rpc("cache", "storage_delete", StorageProviderRequest, StorageProviderRecord, "delete a storage provider"),
    Rpc("cache", "storage_test", StorageProviderRequest, StorageTestReply, "round-trip a small object"),
    Rpc("cache", "storage_type", StorageTypeRequest, StorageTypeSchema, "the fields a provider type takes"),
)

_TRACE_HEADERS = {
    "type": "object",
    "properties": {
        "traceparent": {"type": "string", "description": "W3C trace context: the run's trace (Grafana Tempo)"},
        "Nats-Msg-Id": {"type": "string", "description": "JetStream de-duplication id, where it applies"},
    },
}

_WIRE = (
    f"JSON (UTF-8). A payload over {COMPRESS_ABOVE} bytes is Zstandard-compressed behind the two bytes "
    "0x00 0x73 ('\\0s'); every other payload is plain JSON. Fields may be added (ignore unknown ones); "
    "`v` is the schema version."
)


def _message(model: type[BaseModel], title: str | None = None) -> dict[str, Any]:
    return {
        "name": model.__name__,
        "title": title or model.__name__,
        "summary": (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else "",
        "contentType": "application/json",
        "headers": _TRACE_HEADERS,
        "payload": {"$ref": f"#/components/schemas/{model.__name__}"},
    }


def document() -> dict[str, Any]:
    """The AsyncAPI document as plain data (deterministic: sorted keys when written)."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    models: set[type[BaseModel]] = set()

    def add(
        channel: str,
        address: str,
        model: type[BaseModel],
        description: str,
        action: str,
        parameters: dict[str, Any] | None = None,
    ) -> None:
        models.add(model)
        messages[model.__name__] = _message(model)
        channels[channel] = {
            "address": address,
            "description": description,
            "messages": {model.__name__: {"$ref": f"#/components/messages/{model.__name__}"}},
            **({"parameters": parameters} if parameters else {}),
        }
        operations[f"{action}_{channel}"] = {
            "action": action,
            "channel": {"$ref": f"#/channels/{channel}"},
            "messages": [{"$ref": f"#/channels/{channel}/messages/{model.__name__}"}],
        }

    run_id = {"description": "the run's id"}
    add(
        "taskStep",
        subjects.TASK_STEP,
        StepTask,
        "Work queue (stream ARTDAG_TASKS, work-queue retention, durable consumer `executor-steps`): one "
        "step to render. At-least-once; de-duplicated by Nats-Msg-Id `<run_id>.<step_id>`.",
        "send",
    )
    add(
        "taskInlineStep",
        subjects.TASK_INLINE_STEP,
        StepTask,
        "Work queue (stream ARTDAG_TASKS, durable consumer `executor-inline-steps`): one step of a node "
        "type that is no media work (NOOP), taken many at a time, rendered without claim or RUNNING event.",
        "send",
    )
    add(
        "taskAnalyze",
        subjects.TASK_ANALYZE,
        AnalyzeRequest,
        "Work queue for analyses (stream ARTDAG_TASKS, durable consumer `analyzer-tasks`); analyses are "
        "requested over `artdag.rpc.analyzer.analyze` today.",
        "send",
    )
    add(
        "taskReplicate",
        subjects.TASK_REPLICATE,
        ReplicationTask,
        "Work queue (stream ARTDAG_TASKS, durable consumer `cache-replication`): copy content to a storage "
        "provider (`store`: verified against its CID) or remove it (`remove`). Retried with back-off.",
        "send",
    )
    add(
        "runEvents",
        f"{subjects.PREFIX}.event.run.{{run_id}}.{{kind}}",
        RunEvent,
        "A run changed state (stream ARTDAG_EVENTS, replayable for 7 days). Follow one run with "
        f"`{subjects.PREFIX}.event.run.<run_id>.>`, all runs with `{subjects.RUN_EVENTS_WILDCARD}`.",
        "receive",
        {"run_id": run_id, "kind": {"enum": ["submitted", *[s.value for s in RunStatus]]}},
    )
    add(
        "stepEvents",
        f"{subjects.PREFIX}.event.step.{{run_id}}.{{step_id}}",
        StepEvent,
        "A step of a run started, finished, was found cached or failed (stream ARTDAG_EVENTS).",
        "receive",
        {"run_id": run_id, "step_id": {"description": "the step's cache id (sha3-256, hex)"}},
    )
    add(
        "analysisProgress",
        f"{subjects.PREFIX}.event.analysis.{{analysis_id}}",
        AnalysisProgress,
        "Progress of a long analysis (stream ARTDAG_EVENTS).",
        "receive",
        {"analysis_id": {"description": "the analysis id (input cid + features + parameters + version)"}},
    )
    add(
        "contentStored",
        subjects.CONTENT_STORED,
        ContentStored,
        "Content was stored (declared in the subject space; not yet published).",
        "receive",
    )

    models.add(RpcReply)
    for rpc in RPC:
        channel = f"rpc_{rpc.service}_{rpc.verb}"
        models.update((rpc.request, rpc.reply))
        messages[rpc.request.__name__] = _message(rpc.request)
        reply_name = f"{rpc.reply.__name__}Reply"
        messages[reply_name] = {
            **_message(RpcReply, f"RpcReply carrying {rpc.reply.__name__}"),
            "name": reply_name,
            "description": f"`ok: true` and `data`: a {rpc.reply.__name__}; or `ok: false` and `error`.",
            "x-data": {"$ref": f"#/components/schemas/{rpc.reply.__name__}"},
        }
        channels[channel] = {
            "address": subjects.rpc(rpc.service, rpc.verb),
            "description": f"Request/reply on core NATS, queue group `{subjects.rpc_queue(rpc.service)}`: "
            f"{rpc.summary}.",
            "messages": {
                rpc.request.__name__: {"$ref": f"#/components/messages/{rpc.request.__name__}"},
                reply_name: {"$ref": f"#/components/messages/{reply_name}"},
            },
        }
        operations[f"serve_{channel}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{channel}"},
            "messages": [{"$ref": f"#/channels/{channel}/messages/{rpc.request.__name__}"}],
            "reply": {
                "address": {"location": "$message.header#/reply", "description": "the request's reply inbox"},
                "messages": [{"$ref": f"#/channels/{channel}/messages/{reply_name}"}],
            },
        }

    ordered = sorted(models, key=lambda m: m.__name__)
    _, top = models_json_schema([(m, "validation") for m in ordered], ref_template="#/components/schemas/{model}")
    schemas = dict(top.get("$defs", {}))
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "artdag NATS subjects",
            "version": __version__,
            "description": "Every subject artdag publishes or serves on NATS. " + _WIRE,
        },
        "defaultContentType": "application/json",
        "servers": {
            "nats": {
                "host": "localhost:4222",
                "protocol": "nats",
                "description": "the cluster's NATS (JetStream on)",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def render() -> str:
    """The document as it is committed: JSON, keys sorted, two-space indent, final newline."""
    return json.dumps(document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the document to the path given (or print it)."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        sys.stdout.write(render())
        return 0
    Path(args[0]).write_text(render(), encoding="utf-8")
    print(f"wrote {args[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
