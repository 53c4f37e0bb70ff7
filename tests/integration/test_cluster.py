"""Against a real 3-server JetStream cluster (nats-server from the wheel, routes on loopback).

`ARTDAG_NATS_REPLICAS=3` puts every stream, consumer and bucket on all three servers: losing
one, even the leader of the tasks stream, loses no task and stops nothing for long; the lost
server, started again, catches up.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import nats.errors
import nats.js.errors
import pytest
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from artdag_common import streams, subjects
from artdag_common.bus import connect
from artdag_common.bus_access import BusCredentials
from artdag_common.content_store.nats import NatsContentStore
from artdag_common.nats_server import EmbeddedNatsCluster

T = TypeVar("T")
OUTAGES = (
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.js.errors.ServiceUnavailableError,
    nats.js.errors.NoStreamResponseError,
)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[EmbeddedNatsCluster]:
    with EmbeddedNatsCluster(tmp_path / "cluster", credentials=BusCredentials.generate()) as running:
        yield running


@pytest.fixture
async def nc(cluster: EmbeddedNatsCluster) -> AsyncIterator[NatsClient]:
    client = await connect(cluster.url, "pytest-cluster", login=cluster.admin)
    await _until_ready(client.jetstream())
    try:
        yield client
    finally:
        await client.close()


async def _until_ready(js: JetStreamContext, timeout_s: float = 30.0) -> None:
    """Wait for the cluster's JetStream to have a meta leader (it elects one after start-up)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            await js.account_info()
            return
        except OUTAGES:
            assert time.monotonic() < deadline, "the cluster's JetStream did not come up"
            await asyncio.sleep(0.2)


async def _retry(what: Callable[[], Awaitable[T]], timeout_s: float = 30.0) -> T:
    """Await `what()` until the cluster answers it (a leader being elected answers nothing)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await what()
        except OUTAGES:
            assert time.monotonic() < deadline, f"no answer within {timeout_s} s"
            await asyncio.sleep(0.2)


async def test_provisioning_puts_every_stream_consumer_and_bucket_on_three_servers(
    nc: NatsClient, tmp_path: Path
) -> None:
    js = nc.jetstream()
    await streams.provision(js, replicas=1)  # a stack that ran before replication was set
    store = NatsContentStore(nc, "artdag_content", spool_dir=tmp_path / "spool")
    await store.open()
    await streams.provision(js, replicas=3)  # raised in place
    await streams.provision(js, replicas=1)  # a replica with the old setting does not lower it
    raised = NatsContentStore(nc, "artdag_content", spool_dir=tmp_path / "spool", replicas=3)
    await raised.open()

    names = [*(s.name or "" for s in streams.STREAMS), *(streams.kv_stream(b.bucket) for b in streams.KV_BUCKETS)]
    deadline = time.monotonic() + 30
    for name in [*names, raised.stream]:
        info = await js.stream_info(name)
        assert info.config.num_replicas == 3, name
        # A stream raised in place grows its group in the background: two more servers, caught up.
        while not (
            info.cluster
            and len(info.cluster.replicas or []) == 2
            and all(p.current for p in info.cluster.replicas or [])
        ):
            assert time.monotonic() < deadline, (name, info.cluster)
            await asyncio.sleep(0.25)
            info = await js.stream_info(name)
    for consumer in streams.CONSUMERS:
        info = await js.consumer_info(consumer.stream, consumer.durable)
        assert info.config.num_replicas == 3, consumer.durable


async def test_losing_the_tasks_leader_loses_no_task(cluster: EmbeddedNatsCluster, nc: NatsClient) -> None:
    js = nc.jetstream()
    await streams.provision(js, replicas=3)
    sent = [f"step-{k}".encode() for k in range(20)]
    for body in sent:
        await _retry(functools.partial(js.publish, subjects.TASK_STEP, body, stream=streams.TASKS.name))
    info = await js.stream_info(streams.TASKS.name or "")
    assert info.cluster is not None and info.cluster.leader
    leader = cluster.server_named(info.cluster.leader)
    assert leader.process is not None
    leader.process.kill()
    leader.process.wait()

    # A new leader among the two left: the tasks are all there, new ones are accepted within seconds.
    started = time.monotonic()
    await _retry(lambda: js.publish(subjects.TASK_STEP, b"late", stream=streams.TASKS.name))
    assert time.monotonic() - started < 15
    worker = await js.pull_subscribe_bind(streams.STEP_WORKERS.durable, stream=streams.STEP_WORKERS.stream)
    got: list[bytes] = []
    deadline = time.monotonic() + 30
    while len(got) < len(sent) + 1:
        assert time.monotonic() < deadline, got
        try:
            for msg in await worker.fetch(10, timeout=1):
                got.append(msg.data)
                await msg.ack()
        except OUTAGES:
            await asyncio.sleep(0.2)
    assert sorted(got) == sorted([*sent, b"late"])
    after = await js.stream_info(streams.TASKS.name or "")
    assert after.cluster is not None and after.cluster.leader != info.cluster.leader

    # The lost server comes back with its store and catches up with what it missed.
    leader.restart()
    await _caught_up(js)


async def test_losing_a_follower_stops_nothing(cluster: EmbeddedNatsCluster, nc: NatsClient) -> None:
    js = nc.jetstream()
    await streams.provision(js, replicas=3)
    info = await _retry(lambda: js.stream_info(streams.TASKS.name or ""))
    assert info.cluster is not None and info.cluster.leader
    follower = next(s for s in cluster.servers if f"{info.cluster.leader}" not in s.extra_args)
    assert follower.process is not None
    follower.process.kill()
    follower.process.wait()
    # The leader and the other follower are a majority: publishes are confirmed as before.
    started = time.monotonic()
    for k in range(10):
        await _retry(functools.partial(js.publish, subjects.TASK_STEP, f"t{k}".encode(), stream=streams.TASKS.name))
    assert time.monotonic() - started < 10
    assert (await js.stream_info(streams.TASKS.name or "")).state.messages == 10
    follower.restart()
    await _caught_up(js)


async def _caught_up(js: JetStreamContext, timeout_s: float = 30.0) -> None:
    """Wait until both followers of the tasks stream are online and current."""
    deadline = time.monotonic() + timeout_s
    while True:
        state = await js.stream_info(streams.TASKS.name or "")
        peers = (state.cluster.replicas or []) if state.cluster else []
        if len(peers) == 2 and all(p.current and not p.offline for p in peers):
            return
        assert time.monotonic() < deadline, peers
        await asyncio.sleep(0.3)


def test_a_route_port_taken_meanwhile_starts_the_cluster_again_on_fresh_ports(tmp_path: Path) -> None:
    import socket

    cluster = EmbeddedNatsCluster(tmp_path / "taken", credentials=BusCredentials.generate())
    taken = int(cluster.servers[2].extra_args[cluster.servers[2].extra_args.index("--cluster") + 1].rsplit(":", 1)[1])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        with cluster:
            assert all(server.exit_code() is None for server in cluster.servers)
            assert f":{taken}" not in " ".join(cluster.servers[2].extra_args)
