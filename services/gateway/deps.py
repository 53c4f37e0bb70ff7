"""What every route module shares: the gateway's bus runtime, content store and settings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Query, Request

from artdag_common.content_store import ContentStore
from artdag_common.contracts import Rep, Req, Verb
from artdag_common.disk import ensure_room
from artdag_common.errors import RateLimitedError
from artdag_common.runtime import ServiceRuntime
from artdag_common.schemas import MAX_OFFSET
from services.gateway.auth import Authenticator
from services.gateway.settings import GatewaySettings

# Multipart framing around a file: allowed on top of a size limit before refusing early.
MULTIPART_OVERHEAD = 64 * 1024

# Every list route pages with these: past the bounds a request is a 422 naming the parameter.
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description=f"items to skip (at most {MAX_OFFSET:,})")]


class StreamSlots:
    """Open event streams per user on this gateway: at most `limit` each, one more is a 429."""

    RETRY_AFTER_S = 5.0

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open: dict[str, int] = {}

    def take(self, user: str) -> Callable[[], None]:
        """Hold a slot for `user`; the function returned gives it back (calling it again does nothing)."""
        if self.open.get(user, 0) >= self.limit:
            raise RateLimitedError(
                f"at most {self.limit} open event streams per user (ARTDAG_SSE_PER_USER): close one first",
                retry_after_s=self.RETRY_AFTER_S,
            )
        self.open[user] = self.open.get(user, 0) + 1
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                left = self.open.get(user, 1) - 1
                if left > 0:
                    self.open[user] = left
                else:
                    self.open.pop(user, None)

        return release


class Gateway:
    """What the routes share: the bus runtime, the store, the settings."""

    def __init__(self, runtime: ServiceRuntime, store: ContentStore, settings: GatewaySettings) -> None:
        self.runtime = runtime
        self.store = store
        self.settings = settings
        self.auth = Authenticator(runtime, settings)
        self.event_streams = StreamSlots(settings.sse_per_user)
        # L2's public keys by keyId (PEM, monotonic deadline), for requests L2 signs.
        self.l2_keys: dict[str, tuple[str, float]] = {}

    def disk_paths(self) -> list[Path]:
        """Where this gateway writes: its home (spooled uploads) and the local store, if that is the store."""
        paths = [self.settings.home]
        if self.settings.store.cache_dir is not None:
            paths.append(self.settings.store.cache_dir)
        return paths

    def ensure_room(self, what: str) -> None:
        """Refuse new work (507) while free disk space is below ARTDAG_MIN_FREE_BYTES."""
        ensure_room(self.disk_paths(), self.settings.min_free_bytes, what)

    async def call(self, verb: Verb[Req, Rep], request: Req, *, timeout_s: float | None = None) -> Rep:
        """`verb`'s reply (the verb's wait, or `timeout_s` for this one call)."""
        return await self.runtime.rpc.call(verb, request, timeout_s=timeout_s)


def gateway(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


GatewayDep = Annotated[Gateway, Depends(gateway)]
