"""Every route of the HTTP API, called with odd path and query values and odd bodies, answers
with a 4xx (or a 2xx where the odd value happens to be fine), never a 5xx, and the stack stays up.
Over `artdag up` (a stack of its own: some of these calls change things)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from artdag_common.cid import cid_of_bytes
from tests.e2e.conftest import running_stack

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


def test_no_route_answers_odd_requests_with_a_server_error(tmp_path: Path) -> None:
    # The odd calls to the login routes fail authentication: the limit on those must not turn
    # every later call into a 429 (that would test the limiter, not the routes).
    with running_stack(tmp_path / "home", ARTDAG_AUTH_FAIL_LIMIT="100000") as stack, stack.http() as http:
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
