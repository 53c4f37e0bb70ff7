"""Who renders which step: a lease per step id in the claims bucket (see `artdag_common.leases`).

A replica takes a step's claim before rendering it, renews it while it renders and deletes it
once the result is recorded. A replica that finds the claim held waits for the holder's result,
or for its lease to lapse (the holder died) and then takes the claim itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from artdag_common.bus import outlasting
from artdag_common.leases import lease_value, read_lease, take_lease

T = TypeVar("T")

POLL_S = 0.5
"""How often a replica waiting on another's claim looks for its result."""


@dataclass(frozen=True)
class StepClaims:
    """One replica's claims on steps: take, renew, wait on another holder, release."""

    kv: KeyValue
    holder: str  # this replica's name, as its leases carry it
    lease_s: float
    heartbeat_s: float
    poll_s: float = POLL_S

    async def take(self, step_id: str) -> bool:
        """Take the step's lease: create it, renew our own, or take over one that has lapsed."""
        return await outlasting(
            lambda: take_lease(self.kv, step_id, self.holder, self.lease_s), f"claiming step {step_id}"
        )

    async def _own_revision(self, step_id: str) -> int | None:
        """The revision of the step's claim if this replica holds it (None: gone, or another's now)."""
        try:
            entry = await self.kv.get(step_id)
        except KeyNotFoundError:
            return None
        return entry.revision if read_lease(entry.value).worker == self.holder else None

    async def keep(self, step_id: str) -> None:
        """Renew the lease every heart-beat until cancelled (a renewal that fails is left to the next).

        A claim another replica took over (this one's lease lapsed: a stall) is left to it: renewing
        it would put two replicas on one step for good.
        """
        while True:
            await asyncio.sleep(self.heartbeat_s)
            with contextlib.suppress(Exception):
                revision = await self._own_revision(step_id)
                if revision is None:
                    return
                await self.kv.update(step_id, lease_value(self.holder, self.lease_s), last=revision)

    async def release(self, step_id: str) -> None:
        """Delete the claim if it is still this replica's (a delete that fails leaves it to lapse)."""
        with contextlib.suppress(Exception):
            revision = await self._own_revision(step_id)
            if revision is not None:
                await self.kv.delete(step_id, last=revision)

    async def await_holder(
        self, step_id: str, result: Callable[[], Awaitable[T | None]], alive: Callable[[], Awaitable[object]]
    ) -> T | None:
        """Wait until the holder's `result()` appears or its claim lapses; `alive()` every heart-beat meanwhile.

        Returns the result, or None once this replica holds the claim itself.
        """
        last_beat = time.monotonic()
        while True:
            await asyncio.sleep(self.poll_s)
            found = await result()
            if found is not None:
                return found
            if await self.take(step_id):
                return None
            if time.monotonic() - last_beat > self.heartbeat_s:
                await alive()
                last_beat = time.monotonic()
