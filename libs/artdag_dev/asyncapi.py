"""The AsyncAPI 3.0 document of every NATS subject artdag uses, from `subjects` and the pydantic models.

`python -m artdag_dev.asyncapi docs/asyncapi.json` writes it (`make asyncapi`); a
test checks that the committed file is current and that every verb in `contracts` is
served by a service.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from artdag_common import __version__, contracts, subjects
from artdag_common.codec import COMPRESS_ABOVE
from artdag_common.schemas import (
    AnalysisProgress,
    AnalyzeRequest,
    ContentStored,
    ReplicationTask,
    RpcReply,
    RunEvent,
    RunFinished,
    RunStatus,
    StepEvent,
    StepTask,
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
        "runFinished",
        f"{subjects.PREFIX}.event.finished.{{run_id}}",
        RunFinished,
        "A run finished, with its whole final state (stream ARTDAG_EVENTS, de-duplicated by Nats-Msg-Id "
        "`finished.<run_id>`): published once the state shows every step of the output's making, from "
        "whichever planner replica's write completes it. The cache's durable consumer `cache-runs-finished` "
        "records references and provenance from it alone.",
        "receive",
        {"run_id": run_id},
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
    for rpc in contracts.ALL:
        channel = f"rpc_{rpc.service}_{rpc.name}"
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
            "address": rpc.subject,
            "description": f"Request/reply on core NATS, queue group `{rpc.queue}`: {rpc.summary}.",
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
