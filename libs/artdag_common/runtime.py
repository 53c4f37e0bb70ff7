"""The life of a service process: connect, provision, serve, stop cleanly.

Every service's `__main__` builds its settings and calls `run_service` with a
`start` coroutine that registers its handlers on the `ServiceRuntime`. SIGTERM or
SIGINT stops new work, lets in-flight work finish (bounded), and drains the bus.
"""

from __future__ import annotations

import asyncio
import contextlib
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

from artdag_common import __version__, rpc, streams
from artdag_common.bus import connect, consume
from artdag_common.schemas import HealthReply, HealthRequest
from artdag_common.settings import CommonSettings
from artdag_common.telemetry import setup_tracing

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


def configure_logging(service: str, level: str) -> None:
    """One line per record, naming the service that speaks; secrets in messages are redacted."""
    logging.basicConfig(
        level=level,
        format=f"%(asctime)s %(levelname)-7s [{service}] %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactSecrets())
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

    async def open(self) -> None:
        """Connect to the bus, provision JetStream, answer health checks."""
        nc = await connect(self.settings.nats_url, self.instance, closing=self.stopping)
        self._nc = nc
        self.stack.push_async_callback(self._drain)
        self._js = nc.jetstream()
        await streams.provision(self._js)
        await rpc.serve(nc, self.service, "health", HealthRequest, self._health)

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
        runtime.started = True
        log.info("%s ready (%s)", service, runtime.instance)
        await runtime.stopping.wait()
        log.info("%s stopping", service)
    finally:
        await runtime.close()


def run_service(service: str, settings: S, start: Callable[[ServiceRuntime, S], Awaitable[None]]) -> None:
    """Run a service until SIGTERM/SIGINT; the process exits non-zero if start-up fails."""
    configure_logging(service, settings.log_level)
    try:
        asyncio.run(_main(service, settings, start))
    except Exception as exc:
        log.exception("%s failed: %s", service, exc)
        raise SystemExit(1) from exc
