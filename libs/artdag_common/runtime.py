"""The life of a service process: connect, provision, serve, stop cleanly.

Every service's `__main__` builds its settings and calls `run_service` with a
`start` coroutine that registers its handlers on the `ServiceRuntime`. SIGTERM or
SIGINT stops new work, lets in-flight work finish (bounded), and drains the bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any, TypeVar

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from artdag_common import __version__, contracts, rpc, streams
from artdag_common.bus import StreamPublisher, connect, consume
from artdag_common.bus_access import STREAM_MANAGERS, home_login
from artdag_common.metrics import LAG, setup_metrics
from artdag_common.probes import ProbeServer
from artdag_common.rpc import Client as RpcClient
from artdag_common.schemas import HealthReply, HealthRequest
from artdag_common.settings import CommonSettings, LogFormat
from artdag_common.telemetry import JsonFormatter, setup_tracing

log = logging.getLogger(__name__)

HealthDetails = Callable[[], dict[str, Any]]


_SECRET_RE = re.compile(r"(auth_token=|csrf_token=|[Bb]earer\s+|artdag_session=)[^\s&\"';,]+")


class RedactSecrets(logging.Filter):
    """Blank out tokens a record might carry (a login URL's `auth_token=…`, a `Bearer …` header)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _SECRET_RE.sub(r"\1[redacted]", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


# How often a service reads the backlog of the consumers it consumes (for the lag metric).
LAG_POLL_S = 5.0


def configure_logging(service: str, level: str, fmt: LogFormat = "text") -> None:
    """One line per record naming the service that speaks (`json`: a JSON object with trace and run ids).

    Secrets a message might carry (tokens in a login URL, a Bearer header) are redacted.
    """
    logging.basicConfig(
        level=level,
        format=f"%(asctime)s %(levelname)-7s [{service}] %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactSecrets())
        if fmt == "json":
            handler.setFormatter(JsonFormatter(service))
    # nats-py and the HTTP stack are chatty at INFO; their warnings still show.
    for noisy in ("nats", "uvicorn.access", "httpx", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


class ServiceRuntime:
    """What a running service holds: its bus connection, its exit stack, its stop signal."""

    def __init__(self, service: str, settings: CommonSettings) -> None:
        self.service = service
        self.settings = settings
        self.instance = f"{service}-{socket.gethostname()}-{os.getpid()}"
        self.started_at = time.monotonic()
        self.stack = AsyncExitStack()
        self.stopping = asyncio.Event()
        # Health says not ok while this is False (`run_service` clears it until the handlers are registered).
        self.started = True
        self.health_details: HealthDetails = dict
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._publisher: StreamPublisher | None = None
        self._rpc: RpcClient | None = None
        self.probes: ProbeServer | None = None
        self._lag_consumers: list[streams.ConsumerDecl] = []
        self._lag_task: asyncio.Task[None] | None = None

    @property
    def nc(self) -> NatsClient:
        if self._nc is None:
            raise RuntimeError("not connected")
        return self._nc

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise RuntimeError("not connected")
        return self._js

    @property
    def publisher(self) -> StreamPublisher:
        """Stream publishes that many await together (the step path's; see `StreamPublisher`)."""
        if self._publisher is None:
            self._publisher = StreamPublisher(self.nc, timeout_s=self.settings.rpc_timeout_s)
        return self._publisher

    @property
    def rpc(self) -> RpcClient:
        """Asks other services' verbs, waiting ARTDAG_RPC_TIMEOUT_S (or the verb's own longer time)."""
        if self._rpc is None:
            self._rpc = RpcClient(self.nc, self.settings.rpc_timeout_s)
        return self._rpc

    def not_ready(self) -> str | None:
        """Why this service should get no work now (the readiness probe), or None when it is ready."""
        if self.stopping.is_set():
            return "stopping"
        if self._nc is None or not self._nc.is_connected:
            return "not connected to NATS"
        if not self.started:
            return "starting"
        return None

    async def open(self) -> None:
        """Start the probe listener, connect to the bus, provision JetStream, answer health checks."""
        if self.settings.probe_port is not None:
            metrics_on = setup_metrics(self.service)
            self.probes = ProbeServer(
                self.settings.probe_host, self.settings.probe_port, self.not_ready, metrics=metrics_on
            )
            # Listening before connecting: liveness holds while NATS is still out of reach.
            await self.probes.start()
            self.stack.push_async_callback(self.probes.close)
        login = self.settings.nats.login or home_login(self.settings.home, self.service)
        nc = await connect(
            self.settings.nats.url,
            self.instance,
            login=login,
            tls=self.settings.nats.tls,
            closing=self.stopping,
        )
        self._nc = nc
        self.stack.push_async_callback(self._drain)
        self._js = nc.jetstream()
        object_bucket = self.settings.store.nats_object_bucket if self.settings.store.kind == "nats" else None
        # Only the planner (and admin) may make streams; the others wait until it has.
        if login is None or login.user in STREAM_MANAGERS:
            await streams.provision(
                self._js, self.settings.nats.replicas, object_bucket, ack_wait_s=self.settings.ack_wait_s
            )
        else:
            await streams.await_provisioned(self._js, object_bucket=object_bucket)
        await rpc.serve(nc, contracts.health_of(self.service), self._health)

    def run_consumer(
        self,
        consumer: streams.ConsumerDecl,
        handler: Callable[[Msg], Awaitable[None]],
        *,
        concurrency: int,
        admit: Callable[[], int] | None = None,
    ) -> None:
        """Consume a durable consumer in the background until the service stops."""
        task = asyncio.create_task(
            consume(
                self.js,
                consumer.stream,
                consumer.durable,
                handler,
                concurrency=concurrency,
                stopping=self.stopping,
                admit=admit,
            )
        )

        async def finish() -> None:
            self.stopping.set()
            await asyncio.wait({task}, timeout=10)

        self.stack.push_async_callback(finish)
        if self.probes is not None and self.probes.metrics:
            self._lag_consumers.append(consumer)
            if self._lag_task is None:
                self._lag_task = asyncio.create_task(self._poll_lag())
                self.stack.callback(self._lag_task.cancel)

    async def _poll_lag(self) -> None:
        """Read the backlog of this service's consumers for the `artdag.consumer.*` gauges."""
        while not self.stopping.is_set():
            for consumer in self._lag_consumers:
                try:
                    info = await self.js.consumer_info(consumer.stream, consumer.durable)
                except Exception as exc:  # noqa: BLE001 - a missed reading is no reason to stop reading
                    log.debug("consumer info %s: %s", consumer.durable, exc)
                    continue
                key = (consumer.stream, consumer.durable)
                LAG.pending[key] = int(info.num_pending or 0)
                LAG.ack_pending[key] = int(info.num_ack_pending or 0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=LAG_POLL_S)

    async def _health(self, _request: HealthRequest) -> HealthReply:
        return HealthReply(
            service=self.service,
            instance=self.instance,
            version=__version__,
            ok=self.started and not self.stopping.is_set(),
            uptime_s=time.monotonic() - self.started_at,
            details=self.health_details(),
        )

    async def _drain(self) -> None:
        if self._nc is not None and not self._nc.is_closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._nc.drain(), timeout=5)
            with contextlib.suppress(Exception):
                await self._nc.close()

    async def close(self) -> None:
        await self.stack.aclose()


S = TypeVar("S", bound=CommonSettings)


async def _main(service: str, settings: S, start: Callable[[ServiceRuntime, S], Awaitable[None]]) -> None:
    setup_tracing(service, settings.otlp_endpoint)
    runtime = ServiceRuntime(service, settings)
    runtime.started = False
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runtime.stopping.set)
    try:
        await runtime.open()
        await start(runtime, settings)
        # What start-up made (modules, tables, handlers) lives as long as the process: out of the
        # collector's sight, so that collections scan only what requests make.
        gc.freeze()
        runtime.started = True
        log.info("%s ready (%s)", service, runtime.instance)
        await runtime.stopping.wait()
        log.info("%s stopping", service)
    finally:
        await runtime.close()


# Young objects collected every this many allocations (CPython's default is 700): a big recipe or
# run state makes hundreds of thousands of objects, and each collection that reaches the old
# generation scans the whole heap (parsing a 1,000-step recipe took 86 ms on a fresh heap and
# 300 ms once a few runs were live; 105 ms steady with these thresholds).
GC_THRESHOLDS = (50_000, 20, 100)


def run_service(service: str, settings: S, start: Callable[[ServiceRuntime, S], Awaitable[None]]) -> None:
    """Run a service until SIGTERM/SIGINT; the process exits non-zero if start-up fails."""
    gc.set_threshold(*GC_THRESHOLDS)
    configure_logging(service, settings.log_level, settings.log_format)
    try:
        asyncio.run(_main(service, settings, start))
    except Exception as exc:
        log.exception("%s failed: %s", service, exc)
        raise SystemExit(1) from exc
