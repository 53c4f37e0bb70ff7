"""Every NATS subject artdag uses, built from one prefix.

No service spells a subject of its own: they call these functions, so that a
rename happens here and nowhere else.
"""

from __future__ import annotations

import re

PREFIX = "artdag"

SERVICES = ("gateway", "auth", "planner", "analyzer", "executor", "cache")

_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def _token(value: str, what: str) -> str:
    """A subject token from outside must not smuggle in dots or wildcards."""
    if not _TOKEN_RE.match(value):
        raise ValueError(f"{what} {value!r} is not a valid subject token")
    return value


# Work queues (stream TASKS, work-queue retention).
TASKS_WILDCARD = f"{PREFIX}.task.>"
TASK_STEP = f"{PREFIX}.task.step"
TASK_INLINE_STEP = f"{PREFIX}.task.inline"  # steps of inline node types (no media work)
TASK_ANALYZE = f"{PREFIX}.task.analyze"
TASK_REPLICATE = f"{PREFIX}.task.replicate"  # copy to / remove from a storage provider

# Events (stream EVENTS, limits retention): what the UI and subscribers follow.
EVENTS_WILDCARD = f"{PREFIX}.event.>"
STEP_EVENTS_WILDCARD = f"{PREFIX}.event.step.>"
RUN_EVENTS_WILDCARD = f"{PREFIX}.event.run.>"
CONTENT_STORED = f"{PREFIX}.event.content.stored"
RUNS_CANCELLED_WILDCARD = f"{PREFIX}.event.run.*.cancelled"
RUNS_COMPLETED_WILDCARD = f"{PREFIX}.event.run.*.completed"
# A finished run's whole final state, once (what the cache records references and provenance from).
RUNS_FINISHED_WILDCARD = f"{PREFIX}.event.finished.*"


def run_event(run_id: str, kind: str) -> str:
    """`artdag.event.run.<run_id>.<kind>` — a change in a run's life."""
    return f"{PREFIX}.event.run.{_token(run_id, 'run id')}.{_token(kind, 'event kind')}"


def run_finished(run_id: str) -> str:
    """`artdag.event.finished.<run_id>` — a run's final state, complete (`RunFinished`)."""
    return f"{PREFIX}.event.finished.{_token(run_id, 'run id')}"


def run_events(run_id: str) -> str:
    """Every event of one run."""
    return f"{PREFIX}.event.run.{_token(run_id, 'run id')}.>"


def step_event(run_id: str, step_id: str) -> str:
    """`artdag.event.step.<run_id>.<step_id>` — a step's progress inside a run."""
    return f"{PREFIX}.event.step.{_token(run_id, 'run id')}.{_token(step_id, 'step id')}"


def step_events(run_id: str) -> str:
    """Every step event of one run."""
    return f"{PREFIX}.event.step.{_token(run_id, 'run id')}.>"


def analysis_progress(analysis_id: str) -> str:
    """`artdag.event.analysis.<analysis_id>` — progress of a long analysis."""
    return f"{PREFIX}.event.analysis.{_token(analysis_id, 'analysis id')}"


def rpc(service: str, verb: str) -> str:
    """`artdag.rpc.<service>.<verb>` — a request answered by one replica of a service."""
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}")
    return f"{PREFIX}.rpc.{service}.{_token(verb, 'verb')}"


def rpc_queue(service: str) -> str:
    """The queue group shared by all replicas of a service."""
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}")
    return f"{PREFIX}-{service}"


def max_deliveries_advisory(stream: str, durable: str) -> str:
    """JetStream's advisory when a consumer gives up on a message (`max_deliver` reached)."""
    return f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.{durable}"
