"""Registering content with the cache service, many records per request.

Every rendered step registers its output before its result is recorded. Under load
that is hundreds of requests a second, each a round trip and a decode on both sides;
records that arrive while a request is in flight go together in the next one instead
(no added wait when idle: a lone record goes at once).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from nats.aio.client import Client as NatsClient

from artdag_common import rpc
from artdag_common.content_store.base import ContentStore
from artdag_common.contracts import Cache
from artdag_common.errors import error_from_code
from artdag_common.schemas import MAX_REGISTER_BATCH, ContentOrigin, ContentRecord, ContentRecords

# How a service records content: an RPC to the cache service, a `Registrar`, or the cache's own catalog.
Register = Callable[[ContentRecord], Awaitable[ContentRecord]]


async def store_document(
    store: ContentStore,
    body: bytes,
    register: Register,
    *,
    name: str,
    origin: ContentOrigin,
    owner: str | None = None,
    media_type: str = "application/json",
) -> ContentRecord:
    """Store a document the system makes (a plan, an analysis, a provenance record) and register it.

    The bytes go first: a record never names content the store does not hold.
    """
    cid = await store.put_bytes(body)
    record = ContentRecord(cid=cid, size=len(body), media_type=media_type, name=name, origin=origin, owner=owner)
    return await register(record)


class Registrar:
    """`await registrar.register(record)`: the stored record, once the cache service committed it."""

    def __init__(self, nc: NatsClient, *, timeout_s: float, max_batch: int = MAX_REGISTER_BATCH) -> None:
        if not 1 <= max_batch <= MAX_REGISTER_BATCH:
            raise ValueError(f"max_batch must be 1..{MAX_REGISTER_BATCH}")
        self.nc = nc
        self.timeout_s = timeout_s
        self.max_batch = max_batch
        self.requests = 0  # requests sent
        self._queued: list[tuple[ContentRecord, asyncio.Future[ContentRecord]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def register(self, record: ContentRecord) -> ContentRecord:
        done: asyncio.Future[ContentRecord] = asyncio.get_running_loop().create_future()
        self._queued.append((record, done))
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_queued())
        return await done

    async def _send_queued(self) -> None:
        try:
            while self._queued:
                batch, self._queued = self._queued[: self.max_batch], self._queued[self.max_batch :]
                live = [(record, done) for record, done in batch if not done.cancelled()]
                if not live:
                    continue
                try:
                    self.requests += 1
                    reply = await rpc.call(
                        self.nc,
                        Cache.register_many,
                        ContentRecords(records=[record for record, _ in live]),
                        timeout_s=self.timeout_s,
                    )
                    if len(reply.outcomes) != len(live):
                        raise RuntimeError(f"cache answered {len(reply.outcomes)} outcomes for {len(live)} records")
                except Exception as exc:  # noqa: BLE001 - every caller in the batch gets it
                    for _, done in live:
                        if not done.done():
                            done.set_exception(exc)
                    continue
                for (_, done), outcome in zip(live, reply.outcomes, strict=True):
                    if done.done():
                        continue
                    if outcome.record is not None:
                        done.set_result(outcome.record)
                    else:
                        error = outcome.error
                        done.set_exception(
                            error_from_code(error.code, error.message, error.field)
                            if error is not None
                            else RuntimeError("cache answered neither a record nor an error")
                        )
        finally:
            # Only a cancelled sender leaves records queued: their callers are cancelled with it.
            self._sender = None
            for _, done in self._queued:
                done.cancel()
            self._queued = []
