"""Streams, consumers and KV buckets, declared as data and provisioned idempotently.

Every service calls `provision(js, replicas)` at start-up; creating what exists already is a
no-op, and a changed declaration updates the stream in place. `replicas`
(``ARTDAG_NATS_REPLICAS``) is how many JetStream servers hold each stream, consumer and
bucket: 1 on one server, 3 on a cluster, so that losing a server loses nothing and stops
nothing. Provisioning raises what exists to the setting (never lowers it: a replica that
starts with an old setting must not undo a scale-up).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, replace

from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    KeyValueConfig,
    ObjectStoreConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError, BucketNotFoundError, NotFoundError

from artdag_common import subjects

log = logging.getLogger(__name__)

DAY_S = 86_400.0
_REPLICAS_EXCEED_STREAM = 10126  # JetStream: "consumer config replica count exceeds parent stream"

TASKS = StreamConfig(
    name="ARTDAG_TASKS",
    subjects=[subjects.TASKS_WILDCARD],
    retention=RetentionPolicy.WORK_QUEUE,
    storage=StorageType.FILE,
    max_age=7 * DAY_S,
    duplicate_window=120.0,
    discard=DiscardPolicy.OLD,
)

EVENTS = StreamConfig(
    name="ARTDAG_EVENTS",
    subjects=[subjects.EVENTS_WILDCARD],
    retention=RetentionPolicy.LIMITS,
    storage=StorageType.FILE,
    max_age=7 * DAY_S,
    duplicate_window=120.0,
)

STREAMS: tuple[StreamConfig, ...] = (TASKS, EVENTS)


@dataclass(frozen=True)
class ConsumerDecl:
    """A durable pull consumer: which stream, which subjects, how patient."""

    stream: str
    durable: str
    filter_subject: str
    ack_wait_s: float
    max_deliver: int
    deliver_all: bool = True

    def config(self, replicas: int = 1) -> ConsumerConfig:
        return ConsumerConfig(
            num_replicas=replicas,
            durable_name=self.durable,
            filter_subject=self.filter_subject,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait_s,
            max_deliver=self.max_deliver,
            deliver_policy=DeliverPolicy.ALL if self.deliver_all else DeliverPolicy.NEW,
            max_ack_pending=1000,
        )


# Executors share one durable consumer: JetStream hands each step to one replica.
STEP_WORKERS = ConsumerDecl(
    stream=TASKS.name or "",
    durable="executor-steps",
    filter_subject=subjects.TASK_STEP,
    ack_wait_s=30.0,
    max_deliver=5,
)
# Inline steps (no media work) queue apart, so that executors can take them many at a time
# while taking media work only as they have room for it.
INLINE_STEP_WORKERS = ConsumerDecl(
    stream=TASKS.name or "",
    durable="executor-inline-steps",
    filter_subject=subjects.TASK_INLINE_STEP,
    ack_wait_s=30.0,
    max_deliver=5,
)
ANALYZE_WORKERS = ConsumerDecl(
    stream=TASKS.name or "",
    durable="analyzer-tasks",
    filter_subject=subjects.TASK_ANALYZE,
    ack_wait_s=30.0,
    max_deliver=5,
)
# Planners share one durable consumer of step events, so each event drives one planner.
PLANNER_STEP_EVENTS = ConsumerDecl(
    stream=EVENTS.name or "",
    durable="planner-step-events",
    filter_subject=subjects.STEP_EVENTS_WILDCARD,
    ack_wait_s=30.0,
    max_deliver=20,
    deliver_all=False,
)
# Cache services share one durable consumer of finished runs (content references, provenance).
# From the start of the stream: a cache service that was down catches up with what it missed.
CACHE_RUN_COMPLETIONS = ConsumerDecl(
    stream=EVENTS.name or "",
    durable="cache-runs-finished",
    filter_subject=subjects.RUNS_FINISHED_WILDCARD,
    ack_wait_s=60.0,
    max_deliver=10,
)
# Cache services share one durable consumer of copies to storage providers; a copy not acked
# (its cache service died mid-copy) comes back to another after the ack wait, with back-off.
CACHE_REPLICATION = ConsumerDecl(
    stream=TASKS.name or "",
    durable="cache-replication",
    filter_subject=subjects.TASK_REPLICATE,
    ack_wait_s=30.0,
    max_deliver=8,
)

# The consumers whose ack wait is ARTDAG_ACK_WAIT_S: how soon a dead replica's work goes to another.
HANDED_OVER = frozenset(
    {STEP_WORKERS.durable, INLINE_STEP_WORKERS.durable, PLANNER_STEP_EVENTS.durable, CACHE_REPLICATION.durable}
)

CONSUMERS: tuple[ConsumerDecl, ...] = (
    STEP_WORKERS,
    INLINE_STEP_WORKERS,
    ANALYZE_WORKERS,
    PLANNER_STEP_EVENTS,
    CACHE_RUN_COMPLETIONS,
    CACHE_REPLICATION,
)

# `direct`: reads go to the stream directly (no JetStream API request, no advisory per read),
# and many keys can be read in one request (`bus.kv_get_many`).
KV_RUNS = KeyValueConfig(bucket="artdag_runs", history=1, ttl=30 * DAY_S, storage=StorageType.FILE, direct=True)
KV_RESULTS = KeyValueConfig(bucket="artdag_results", history=1, storage=StorageType.FILE, direct=True)
KV_CLAIMS = KeyValueConfig(bucket="artdag_claims", history=1, ttl=120.0, storage=StorageType.FILE, direct=True)
KV_ANALYSIS = KeyValueConfig(bucket="artdag_analysis", history=1, storage=StorageType.FILE, direct=True)
KV_REVOKED = KeyValueConfig(bucket="artdag_revoked", history=1, ttl=30 * DAY_S, storage=StorageType.FILE, direct=True)

KV_BUCKETS: tuple[KeyValueConfig, ...] = (KV_RUNS, KV_RESULTS, KV_CLAIMS, KV_ANALYSIS, KV_REVOKED)

# Request/reply answers too large for one message (a plan of thousands of steps) wait here for
# their caller (`artdag_common.rpc`), who deletes them once read; the rest expire.
OBJ_RPC_REPLIES = ObjectStoreConfig(bucket="artdag_rpc_replies", ttl=600.0, storage=StorageType.FILE)

OBJECT_BUCKETS: tuple[ObjectStoreConfig, ...] = (OBJ_RPC_REPLIES,)


async def provision(
    js: JetStreamContext, replicas: int = 1, object_bucket: str | None = None, ack_wait_s: float | None = None
) -> None:
    """Create or update every stream, consumer and bucket; safe to call from every replica.

    `object_bucket`: the content store's object-store bucket, when the store is NATS.
    `ack_wait_s`: the ack wait of the `HANDED_OVER` consumers (ARTDAG_ACK_WAIT_S), else as declared.
    """
    for declared in STREAMS:
        stream = replace(declared, num_replicas=replicas)
        try:
            await js.add_stream(stream)
        except BadRequestError:
            # Exists with a different config: bring it in line with the declaration.
            current = (await js.stream_info(stream.name or "")).config
            await js.update_stream(replace(stream, num_replicas=max(replicas, current.num_replicas or 1)))
    for declared_consumer in CONSUMERS:
        consumer = declared_consumer
        if ack_wait_s is not None and consumer.durable in HANDED_OVER:
            consumer = replace(consumer, ack_wait_s=ack_wait_s)
        try:
            info = await js.consumer_info(consumer.stream, consumer.durable)
        except NotFoundError:
            try:
                await js.add_consumer(consumer.stream, consumer.config(replicas))
            except BadRequestError as exc:
                log.debug("consumer %s created concurrently: %s", consumer.durable, exc)
            continue
        if abs((info.config.ack_wait or 0) - consumer.ack_wait_s) > 0.01:
            # An ack wait changed in the settings: the consumer takes it in place.
            await js.add_consumer(consumer.stream, replace(info.config, ack_wait=consumer.ack_wait_s))
        if (info.config.num_replicas or 1) < replicas:
            await _raise_consumer(js, consumer.stream, replace(info.config, num_replicas=replicas))
    for bucket in KV_BUCKETS:
        try:
            await js.create_key_value(replace(bucket, replicas=replicas))
        except BadRequestError:
            # Made by an earlier version (without direct reads, or fewer replicas): bring its stream in line.
            stream = (await js.stream_info(kv_stream(bucket.bucket))).config
            stream.allow_direct = bool(bucket.direct)
            stream.max_msgs_per_subject = bucket.history
            stream.max_age = bucket.ttl
            stream.num_replicas = max(replicas, stream.num_replicas or 1)
            await js.update_stream(stream)
    declared_objects = [replace(bucket, replicas=replicas) for bucket in OBJECT_BUCKETS]
    if object_bucket is not None:
        declared_objects.append(ObjectStoreConfig(bucket=object_bucket, replicas=replicas))
    for objects in declared_objects:
        try:
            await js.object_store(objects.bucket or "")
        except BucketNotFoundError:
            with contextlib.suppress(BadRequestError):  # made concurrently by another planner
                await js.create_object_store(objects.bucket or "", objects)


async def await_provisioned(js: JetStreamContext, timeout_s: float = 60.0, object_bucket: str | None = None) -> None:
    """Wait until every stream, consumer and bucket exists (for a service that may not make them).

    Only the planner and admin may create streams (`bus_access.STREAM_MANAGERS`); the others
    start beside it and wait for its `provision`.
    """
    names = [s.name or "" for s in STREAMS] + [kv_stream(b.bucket) for b in KV_BUCKETS]
    names += [f"OBJ_{b.bucket}" for b in OBJECT_BUCKETS]
    if object_bucket is not None:
        names.append(f"OBJ_{object_bucket}")
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        missing = await _missing(js, names)
        if not missing:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError(
                f"JetStream is not provisioned after {timeout_s:g} s (no {', '.join(missing)}): is the planner running?"
            )
        log.info("waiting for the planner to provision %s", ", ".join(missing))
        await asyncio.sleep(0.5)


async def _missing(js: JetStreamContext, stream_names: list[str]) -> list[str]:
    missing: list[str] = []
    for name in stream_names:
        try:
            await js.stream_info(name)
        except NotFoundError:
            missing.append(name)
    for consumer in CONSUMERS:
        try:
            await js.consumer_info(consumer.stream, consumer.durable)
        except NotFoundError:
            missing.append(f"consumer {consumer.durable}")
    return missing


async def _raise_consumer(js: JetStreamContext, stream: str, config: ConsumerConfig, timeout_s: float = 30.0) -> None:
    """Give a consumer more replicas once its stream has them (a stream grows its group in the background)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            await js.add_consumer(stream, config)
            return
        except BadRequestError as exc:
            if exc.err_code != _REPLICAS_EXCEED_STREAM or asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.25)


async def raise_replicas(js: JetStreamContext, stream_name: str, replicas: int) -> None:
    """Hold `stream_name` (an object-store bucket's, say) on at least `replicas` servers."""
    config = (await js.stream_info(stream_name)).config
    if (config.num_replicas or 1) < replicas:
        await js.update_stream(replace(config, num_replicas=replicas))


def kv_stream(bucket: str) -> str:
    """The stream that holds a KV bucket."""
    return f"KV_{bucket}"
