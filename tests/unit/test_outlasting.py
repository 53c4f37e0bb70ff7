"""`outlasting`: what must not be lost to a short bus outage is tried again, and nothing else is."""

from __future__ import annotations

import asyncio
import time

import nats.errors
import nats.js.errors
import pytest

from artdag_common.bus import outlasting
from artdag_common.errors import InvalidInputError


def test_a_call_that_meets_a_short_outage_succeeds_once_the_bus_is_back() -> None:
    failures = [nats.js.errors.NoStreamResponseError(), nats.errors.NoRespondersError()]
    calls = 0

    async def publish() -> str:
        nonlocal calls
        calls += 1
        if failures:
            raise failures.pop(0)
        return "acked"

    assert asyncio.run(outlasting(publish, "publishing", within_s=5.0)) == "acked"
    assert calls == 3


def test_a_permanent_error_is_raised_at_once() -> None:
    calls = 0

    async def refused() -> None:
        nonlocal calls
        calls += 1
        raise InvalidInputError("bad", field="x")

    with pytest.raises(InvalidInputError):
        asyncio.run(outlasting(refused, "publishing", within_s=5.0))
    assert calls == 1


def test_an_outage_longer_than_the_allowance_is_raised() -> None:
    async def down() -> None:
        raise nats.errors.NoRespondersError()

    started = time.monotonic()
    with pytest.raises(nats.errors.NoRespondersError):
        asyncio.run(outlasting(down, "publishing", within_s=0.6))
    assert time.monotonic() - started < 1.5


def test_the_allowance_counts_from_the_first_failure_not_from_the_first_call() -> None:
    # A start that ran its analysis for longer than the allowance and then met an outage still
    # waits the outage out.
    calls = 0

    async def slow_then_outage() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(0.7)
            raise nats.js.errors.NoStreamResponseError()
        return "started"

    assert asyncio.run(outlasting(slow_then_outage, "starting", within_s=0.5)) == "started"
    assert calls == 2
