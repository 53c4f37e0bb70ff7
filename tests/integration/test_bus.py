"""Against a real nats-server: provisioning, typed RPC, trace propagation, message fate."""

from __future__ import annotations

import asyncio
import logging

import nats.errors
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import KeyValueConfig, RetentionPolicy, StreamConfig
from opentelemetry import trace
from pydantic import BaseModel

from artdag_common import rpc, streams
from artdag_common.bus import (
    Outgoing,
    StreamError,
    StreamPublisher,
    StreamUnavailableError,
    connect,
    consume,
    kv_get_many,
    publish_event,
    settle,
    watch_dead_letters,
)
from artdag_common.bus_access import BusCredentials
from artdag_common.contracts import Cache, Verb
from artdag_common.errors import (
    InvalidInputError,
    NoAnswerInTimeError,
    NotFoundError,
    PermanentError,
    RetryableError,
    ServiceUnavailableError,
)
from artdag_common.nats_server import EmbeddedNatsServer
from artdag_common.schemas import CidRequest, ContentOrigin, ContentRecord
from artdag_common.telemetry import setup_tracing
from artdag_dev.testing import unique


async def test_provisioning_is_idempotent_and_declares_what_the_design_says(nc: NatsClient) -> None:
    js = nc.jetstream()
    await streams.provision(js)
    await streams.provision(js)  # a second replica starting up
    tasks = await js.stream_info(streams.TASKS.name or "")
    assert tasks.config.retention == RetentionPolicy.WORK_QUEUE
    assert tasks.config.subjects == ["artdag.task.>"]
    events = await js.stream_info(streams.EVENTS.name or "")
    assert events.config.retention == RetentionPolicy.LIMITS
    consumer = await js.consumer_info(streams.STEP_WORKERS.stream, streams.STEP_WORKERS.durable)
    assert consumer.config.max_deliver == streams.STEP_WORKERS.max_deliver
    for bucket in streams.KV_BUCKETS:
        kv = await js.key_value(bucket.bucket)
        status = await kv.status()
        assert status.bucket == bucket.bucket
    claims = await (await js.key_value(streams.KV_CLAIMS.bucket)).status()
    assert claims.ttl == pytest.approx(streams.KV_CLAIMS.ttl)


async def test_rpc_returns_typed_replies_and_typed_errors(nc: NatsClient) -> None:
    async def stat(request: CidRequest) -> ContentRecord:
        if request.cid == "missing":
            raise NotFoundError("no content with cid missing", field="cid")
        return ContentRecord(cid=request.cid, size=3, media_type="text/plain", origin=ContentOrigin.UPLOAD)

    sub = await rpc.serve(nc, Cache.stat, stat)
    try:
        reply = await rpc.call(nc, Cache.stat, CidRequest(cid="QmX"), timeout_s=5.0)
        assert (reply.cid, reply.size) == ("QmX", 3)
        with pytest.raises(NotFoundError) as info:
            await rpc.call(nc, Cache.stat, CidRequest(cid="missing"), timeout_s=5.0)
        assert info.value.field == "cid"

        class Wrong(BaseModel):
            nothing: int = 0

        with pytest.raises(InvalidInputError) as bad:
            # A caller whose request model is not the verb's: the server names the missing field.
            misdeclared = Verb("cache", "stat", Wrong, ContentRecord, "stat with the wrong request")
            await rpc.call(nc, misdeclared, Wrong(), timeout_s=5.0)
        assert bad.value.field == "cid"
    finally:
        await sub.unsubscribe()


async def test_a_request_whose_caller_gave_up_is_dropped_not_done(nc: NatsClient) -> None:
    handled: list[str] = []

    async def slow(request: CidRequest) -> ContentRecord:
        handled.append(request.cid)
        await asyncio.sleep(1.5)
        return ContentRecord(cid=request.cid, size=1, media_type="text/plain", origin=ContentOrigin.UPLOAD)

    slow_probe = Verb("cache", "slow_probe", CidRequest, ContentRecord, "a slow test verb")
    sub = await rpc.serve(nc, slow_probe, slow)  # one at a time
    try:
        # Three callers that wait 0.5 s each: the first is taken at once; the others wait in the
        # queue past their deadline and are dropped, not done after nobody is listening.
        calls = [rpc.call(nc, slow_probe, CidRequest(cid=f"c{k}"), timeout_s=0.5) for k in range(3)]
        answers = await asyncio.gather(*calls, return_exceptions=True)
        assert all(isinstance(a, NoAnswerInTimeError) for a in answers), answers
        await asyncio.sleep(3.5)  # the first finishes; the others come up and are dropped
        assert handled == ["c0"]
        # One with time to wait is answered.
        reply = await rpc.call(nc, slow_probe, CidRequest(cid="c9"), timeout_s=5)
        assert reply.cid == "c9" and handled == ["c0", "c9"]
    finally:
        await sub.unsubscribe()


async def test_rpc_to_an_absent_service_says_so(nc: NatsClient) -> None:
    with pytest.raises(ServiceUnavailableError, match="no auth service"):
        nobody_here = Verb("auth", "nobody-here", CidRequest, ContentRecord, "a verb nobody serves")
        await rpc.call(nc, nobody_here, CidRequest(cid="x"), timeout_s=1)


async def test_traceparent_travels_in_headers_and_joins_the_trace(nc: NatsClient) -> None:
    setup_tracing("pytest", None)
    seen: list[str] = []

    async def handler(request: CidRequest) -> ContentRecord:
        seen.append(format(trace.get_current_span().get_span_context().trace_id, "032x"))
        return ContentRecord(cid=request.cid, size=0, media_type="x/y", origin=ContentOrigin.UPLOAD)

    raw: list[dict[str, str]] = []
    trace_probe = Verb("planner", "trace_probe", CidRequest, ContentRecord, "a test verb")
    sub = await rpc.serve(nc, trace_probe, handler)

    async def record(msg: Msg) -> None:
        raw.append(dict(msg.headers or {}))

    spy = await nc.subscribe(trace_probe.subject, cb=record)
    try:
        with trace.get_tracer("pytest").start_as_current_span("client") as span:
            await rpc.call(nc, trace_probe, CidRequest(cid="QmX"), timeout_s=5.0)
            trace_id = format(span.get_span_context().trace_id, "032x")
        assert raw and raw[0]["traceparent"].split("-")[1] == trace_id
        assert seen == [trace_id]
    finally:
        await spy.unsubscribe()
        await sub.unsubscribe()


async def test_message_fate_follows_the_error(nc: NatsClient) -> None:
    """Permanent errors are not redelivered; retryable ones are, up to max_deliver."""
    js = nc.jetstream()
    name = unique("FATE")
    await js.add_stream(StreamConfig(name=name, subjects=[f"{name}.>"], retention=RetentionPolicy.WORK_QUEUE))
    decl = streams.ConsumerDecl(stream=name, durable="workers", filter_subject=f"{name}.>", ack_wait_s=5, max_deliver=3)
    await js.add_consumer(name, decl.config())
    deliveries: dict[str, int] = {}
    stopping = asyncio.Event()

    async def handler(msg: Msg) -> None:
        kind = msg.subject.rsplit(".", 1)[1]
        deliveries[kind] = deliveries.get(kind, 0) + 1
        error = {"ok": None, "bad": PermanentError("no"), "flaky": RetryableError("later")}[kind]
        await settle(msg, error, max_deliver=decl.max_deliver, base_delay_s=0.05)

    for kind in ("ok", "bad", "flaky"):
        await publish_event(js, f"{name}.{kind}", CidRequest(cid=kind))
    task = asyncio.create_task(consume(js, name, "workers", handler, concurrency=2, stopping=stopping))
    try:
        for _ in range(100):
            if deliveries.get("flaky", 0) >= 3 and "ok" in deliveries and "bad" in deliveries:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
    finally:
        stopping.set()
        await asyncio.wait_for(task, 10)
    assert deliveries == {"ok": 1, "bad": 1, "flaky": 3}
    info = await js.stream_info(name)
    assert info.state.messages == 0  # acked, terminated, and given up on: nothing lingers


async def test_a_second_server_is_separate(tmp_path_factory: pytest.TempPathFactory) -> None:
    with EmbeddedNatsServer(tmp_path_factory.mktemp("other"), credentials=BusCredentials.generate()) as other:
        client = await connect(other.url, "pytest-other", login=other.admin)
        try:
            assert client.is_connected
            assert client.connected_url is not None and client.connected_url.port == other.port
        finally:
            await client.close()


async def test_closing_a_client_is_quiet_and_losing_the_server_is_logged(
    tmp_path_factory: pytest.TempPathFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="artdag_common.bus")
    with EmbeddedNatsServer(tmp_path_factory.mktemp("quiet"), credentials=BusCredentials.generate()) as server:
        closed_on_purpose = await connect(server.url, "pytest-quiet", login=server.admin)
        await closed_on_purpose.close()
        assert "disconnected from nats" not in caplog.text
        left_behind = await connect(server.url, "pytest-left", login=server.admin)
    try:
        for _ in range(100):  # the server is gone: the client notices within a moment
            if "disconnected from nats" in caplog.text:
                break
            await asyncio.sleep(0.05)
        assert "disconnected from nats" in caplog.text
    finally:
        await left_behind.close()


async def test_a_message_nobody_settles_becomes_a_dead_letter_once(nc: NatsClient) -> None:
    js = nc.jetstream()
    name = unique("DLQ")
    await js.add_stream(StreamConfig(name=name, subjects=[f"{name}.>"], retention=RetentionPolicy.WORK_QUEUE))
    decl = streams.ConsumerDecl(
        stream=name, durable="workers", filter_subject=f"{name}.>", ack_wait_s=0.3, max_deliver=2
    )
    await js.add_consumer(name, decl.config())
    letters: list[tuple[bytes, int]] = []

    async def on_letter(payload: bytes, deliveries: int) -> None:
        letters.append((payload, deliveries))

    # Two replicas of the owner watch; only one may handle each letter.
    watchers = [await watch_dead_letters(nc, js, name, "workers", on_letter, queue="owners") for _ in range(2)]
    await publish_event(js, f"{name}.work", CidRequest(cid="crashy"))
    sub = await js.pull_subscribe_bind(durable="workers", stream=name)
    try:
        for _ in range(2):  # a worker that takes the message and dies without a word
            (msg,) = await sub.fetch(1, timeout=5)
            assert msg.metadata.num_delivered in (1, 2)
        # JetStream notices it has given up when it next looks for something to deliver.
        with pytest.raises(nats.errors.TimeoutError):
            await sub.fetch(1, timeout=1.5)
        for _ in range(50):
            if letters:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)
    finally:
        await sub.unsubscribe()
        for watcher in watchers:
            await watcher.unsubscribe()
    assert len(letters) == 1
    assert CidRequest.model_validate_json(letters[0][0]).cid == "crashy"
    assert letters[0][1] == 2
    assert (await js.stream_info(name)).state.messages == 0


async def test_a_reply_larger_than_a_nats_message_still_arrives(nc: NatsClient) -> None:
    """A big run's state (thousands of steps) is far over 1 MiB as JSON; it travels compressed."""

    async def big(request: CidRequest) -> ListRunsReplyForTest:
        return ListRunsReplyForTest(items=[f"{request.cid}-{i:07d}" for i in range(150_000)])

    big_probe = Verb("planner", "big_probe", CidRequest, ListRunsReplyForTest, "a test verb with a big reply")
    sub = await rpc.serve(nc, big_probe, big)
    try:
        reply = await rpc.call(nc, big_probe, CidRequest(cid="run"), timeout_s=5.0)
        assert len(reply.items) == 150_000
        assert len(reply.model_dump_json()) > nc.max_payload
    finally:
        await sub.unsubscribe()


class ListRunsReplyForTest(BaseModel):
    items: list[str]


async def test_the_stream_publisher_confirms_each_message_and_says_what_it_refused(nc: NatsClient) -> None:
    js = nc.jetstream()
    name = unique("PUB")
    await js.add_stream(StreamConfig(name=name, subjects=[f"{name}.>"], duplicate_window=60.0, max_msg_size=1024))
    publisher = StreamPublisher(nc, timeout_s=5.0, outlast_s=0)
    messages = [Outgoing(f"{name}.{i}", str(i).encode(), {"Nats-Msg-Id": f"m{i}"}) for i in range(300)]
    await publisher.publish_many(messages)
    assert (await js.stream_info(name)).state.messages == 300
    await publisher.publish_many(messages[:10])  # the same ids again: stored once
    assert (await js.stream_info(name)).state.messages == 300
    with pytest.raises(StreamError, match="no stream takes"):
        await publisher.publish(Outgoing(unique("nowhere") + ".x", b"lost"))
    with pytest.raises(StreamError, match="refused"):
        await publisher.publish(Outgoing(f"{name}.big", b"x" * 2048))  # over the stream's message size
    assert (await js.stream_info(name)).state.messages == 300


async def test_the_stream_publisher_waits_out_a_stream_that_is_not_there_yet(nc: NatsClient) -> None:
    # What a cluster electing a stream's leader looks like to a publisher: nobody takes the subject.
    js = nc.jetstream()
    name = unique("LATE")
    publisher = StreamPublisher(nc, timeout_s=1.0, outlast_s=30)

    async def appear() -> None:
        await asyncio.sleep(1.0)
        await js.add_stream(StreamConfig(name=name, subjects=[f"{name}.>"]))

    appearing = asyncio.create_task(appear())
    await publisher.publish(Outgoing(f"{name}.x", b"kept"))
    await appearing
    assert (await js.stream_info(name)).state.messages == 1
    # A refusal is not an outage: said at once.
    await js.update_stream(StreamConfig(name=name, subjects=[f"{name}.>"], max_msg_size=16))
    started = asyncio.get_running_loop().time()
    with pytest.raises(StreamError, match="refused") as refused:
        await publisher.publish(Outgoing(f"{name}.big", b"x" * 64))
    assert not isinstance(refused.value, StreamUnavailableError)
    assert asyncio.get_running_loop().time() - started < 5


async def test_many_keys_are_read_in_one_request_and_deleted_ones_are_absent(nc: NatsClient) -> None:
    js = nc.jetstream()
    bucket = unique("kv").replace("-", "_")
    kv = await js.create_key_value(KeyValueConfig(bucket=bucket, history=1, direct=True))
    for i in range(600):  # more than one request's worth
        await kv.put(f"k{i}", f"v{i}".encode())
    await kv.put("k1", b"newer")
    await kv.delete("k2")
    await kv.purge("k3")
    found = await kv_get_many(nc, bucket, [f"k{i}" for i in range(600)] + ["never"])
    assert found["k0"] == b"v0" and found["k1"] == b"newer" and found["k599"] == b"v599"
    assert "k2" not in found and "k3" not in found and "never" not in found
    assert len(found) == 598  # all but the deleted and the purged key
    assert await kv_get_many(nc, bucket, ["never"]) == {}
    assert await kv_get_many(nc, bucket, []) == {}


async def test_buckets_made_by_an_earlier_version_get_direct_reads(tmp_path_factory: pytest.TempPathFactory) -> None:
    with EmbeddedNatsServer(tmp_path_factory.mktemp("upgrade"), credentials=BusCredentials.generate()) as server:
        from artdag_common.bus import connect

        client = await connect(server.url, "pytest-upgrade", login=server.admin)
        try:
            js = client.jetstream()
            old = KeyValueConfig(bucket=streams.KV_RESULTS.bucket, history=1)  # no direct reads
            kv = await js.create_key_value(old)
            await kv.put("step", b"QmKept")
            stream = streams.kv_stream(streams.KV_RESULTS.bucket)
            assert not (await js.stream_info(stream)).config.allow_direct
            await streams.provision(js)
            assert (await js.stream_info(stream)).config.allow_direct
            assert await kv_get_many(client, streams.KV_RESULTS.bucket, ["step"]) == {"step": b"QmKept"}
        finally:
            await client.close()


async def test_the_ack_wait_setting_reaches_the_handed_over_consumers_in_place(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    with EmbeddedNatsServer(tmp_path_factory.mktemp("ackwait"), credentials=BusCredentials.generate()) as server:
        client = await connect(server.url, "pytest-ack-wait", login=server.admin)
        try:
            js = client.jetstream()
            await streams.provision(js)
            for ack_wait_s, expected in ((6.0, 6.0), (None, streams.STEP_WORKERS.ack_wait_s)):
                await streams.provision(js, ack_wait_s=ack_wait_s)
                for consumer in streams.CONSUMERS:
                    info = await js.consumer_info(consumer.stream, consumer.durable)
                    want = expected if consumer.durable in streams.HANDED_OVER else consumer.ack_wait_s
                    assert info.config.ack_wait == pytest.approx(want), consumer.durable
        finally:
            await client.close()
