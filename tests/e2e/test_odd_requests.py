"""Every route of the HTTP API, called with odd path and query values and odd bodies, answers
with a 4xx (or a 2xx where the odd value happens to be fine), never a 5xx; every request/reply
verb on the bus answers garbage with a typed error; garbage on the work streams is dropped; the
stack stays up. Over `artdag up` (a stack of their own: some of these calls change things)."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from artdag_common import subjects
from artdag_common.bus import connect
from artdag_common.bus_access import BusLogin
from artdag_common.cid import cid_of_bytes
from artdag_common.codec import pack, unpack_or_raw
from artdag_common.contracts import ALL as RPC
from artdag_common.schemas import RpcReply
from tests.e2e.conftest import Stack, running_stack

pytestmark = pytest.mark.e2e

ODD_VALUES = [
    "..%2F..%2Fetc%2Fpasswd",  # a path from outside
    "%00",
    "x" * 3000,
    cid_of_bytes(b"nothing stored under this"),  # well formed, unknown
    "run-00000000000000000000000000000000",
    "-1",
    "1e309",
    "'; DROP TABLE content; --",
]
# These end the caller's own session (an empty revoke revokes the token that sends it): after
# them every call would be a 401. Their bad input is tested with the auth routes.
SESSION_ENDING = {"/logout", "/auth/revoke", "/auth/revoke-user"}
ODD_BODIES: list[Any] = [
    {},
    [],
    "text",
    {"recipe": 1, "inputs": "x"},
    {"recipe": "name: a\n", "inputs": {"a": 1}},
    {"name": "x" * 5000, "cids": ["../x"], "limit": -1},
    {"recipe": "steps: [{id: a, type: NOOP, config: {n: !!int abc}}]\noutput: a\n", "inputs": {}},
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # The odd calls to the login routes fail authentication: the limit on those must not turn
    # every later call into a 429 (that would test the limiter, not the routes).
    with running_stack(tmp_path_factory.mktemp("odd"), ARTDAG_AUTH_FAIL_LIMIT="100000") as running:
        yield running


def test_no_route_answers_odd_requests_with_a_server_error(stack: Stack) -> None:
    with stack.http() as http:
        spec = http.get("/openapi.json").json()
        failures: list[str] = []
        statuses: Counter[int] = Counter()
        for path, operations in spec["paths"].items():
            if path in SESSION_ENDING:
                continue
            for method, operation in operations.items():
                if method not in ("get", "post", "put", "patch", "delete"):
                    continue
                query_names = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
                bodies = ODD_BODIES if method in ("post", "put", "patch") else [None]
                for odd in ODD_VALUES:
                    url = re.sub(r"\{[^}]+\}", odd, path)
                    query = dict.fromkeys(query_names, odd)
                    for body in bodies:
                        response = http.request(method.upper(), url, params=query, json=body)
                        statuses[response.status_code] += 1
                        if response.status_code >= 500:
                            failures.append(f"{method.upper()} {path} [{odd[:20]}] {body!r:.60}: {response.text[:200]}")
        assert sum(statuses.values()) > 500  # every route was reached, with every odd value
        assert failures == []
        assert statuses[429] == 0 and statuses[400] + statuses[404] + statuses[422] > 300, statuses
        assert http.get("/health").status_code == 200
        assert "Traceback" not in stack.log.read_text()


GARBAGE = [
    b"",
    b"{",
    b"null",
    b"[]",
    b"{}",
    b"\x00\xff" * 100,
    b'{"cid": "../../etc/passwd", "run_id": "../x", "user": ""}',
    b'{"recipe": "x: &a [*a]", "inputs": {}}',  # a list that holds itself
    b"\x28\xb5\x2f\xfd" + b"\x00" * 20,  # a Zstandard frame that is not one
    pack(b"{" * 100_000),  # compressed, and nested far too deep once inflated
]


async def _send_garbage(url: str, login: BusLogin) -> tuple[list[str], int]:
    # As a peer with every right (the admin login): what each handler does with junk is under test.
    client = await connect(url, "pytest-garbage", login=login)
    try:
        wrong: list[str] = []
        answered = 0
        for verb in RPC:
            for payload in GARBAGE:
                subject = verb.subject
                reply = RpcReply.model_validate_json(
                    unpack_or_raw((await client.request(subject, payload, timeout=10)).data)
                )
                answered += 1
                if reply.error is not None and reply.error.code == "internal":
                    wrong.append(f"{subject} {payload[:20]!r}: {reply.error.message}")
        js = client.jetstream()
        for subject in (subjects.TASK_STEP, subjects.TASK_INLINE_STEP, "artdag.event.step.run-x.y"):
            for payload in GARBAGE:
                await js.publish(subject, payload)
        await asyncio.sleep(2)  # consumed, found malformed, dropped
        return wrong, answered
    finally:
        await client.close()


def test_garbage_on_the_bus_gets_typed_errors_and_is_dropped(stack: Stack) -> None:
    wrong, answered = asyncio.run(_send_garbage(stack.nats_url, stack.bus_admin))
    assert answered == len(RPC) * len(GARBAGE)  # every verb answered every payload
    assert wrong == []
    with stack.http() as http:
        health = http.get("/health")
        assert health.status_code == 200, health.text
    log = stack.log.read_text()
    assert "Traceback" not in log
    assert "dropping malformed step task" in log and "dropping malformed step event" in log
