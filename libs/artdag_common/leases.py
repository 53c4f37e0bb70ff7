"""Leases in the claims bucket: who holds a piece of work, and until when unless renewed.

A holder that dies stops renewing; its lease lapses at `expires_at` and another takes it with
a compare-and-set, so of two takers one wins. (The bucket's own TTL only clears old keys: it is
far longer than a lease, so it must not be what hands work over.)
"""

from __future__ import annotations

import logging
import time

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from pydantic import BaseModel, ValidationError

log = logging.getLogger(__name__)


class Lease(BaseModel):
    """The value of a lease: its holder, and until when it holds unless renewed."""

    worker: str
    expires_at: float

    @property
    def lapsed(self) -> bool:
        return self.expires_at <= time.time()


def lease_value(holder: str, ttl_s: float) -> bytes:
    return Lease(worker=holder, expires_at=time.time() + ttl_s).model_dump_json().encode()


def read_lease(value: bytes | None) -> Lease:
    """A lease as stored; anything unreadable counts as lapsed."""
    try:
        return Lease.model_validate_json(value or b"")
    except ValidationError:
        return Lease(worker="?", expires_at=0.0)


async def take_lease(kv: KeyValue, key: str, holder: str, ttl_s: float) -> bool:
    """Take `key` for `holder` for `ttl_s`: create it, renew our own, or take over a lapsed one."""
    try:
        await kv.create(key, lease_value(holder, ttl_s))
        return True
    except KeyWrongLastSequenceError:
        pass
    try:
        entry = await kv.get(key)
    except KeyNotFoundError:
        return False  # released a moment ago: the next try takes it
    held = read_lease(entry.value)
    if held.worker != holder and not held.lapsed:
        return False
    try:
        # Compare-and-set on the revision read: of two takers, one wins.
        await kv.update(key, lease_value(holder, ttl_s), last=entry.revision)
    except KeyWrongLastSequenceError:
        return False
    if held.worker != holder:
        log.info("%s: took over the lapsed lease of %s", key, held.worker)
    return True


async def held_by_anyone(kv: KeyValue, key: str) -> bool:
    """Whether a lease on `key` is held and has not lapsed."""
    try:
        entry = await kv.get(key)
    except KeyNotFoundError:
        return False
    return not read_lease(entry.value).lapsed
