"""Schemathesis over the gateway's OpenAPI schema, as an admin, as a plain user and anonymously.

Every operation the schema documents is called with data generated from its schema (valid, and
deliberately invalid), by each of the three, over real HTTP (uvicorn in this process) to the gateway
with the real cache, auth and planner services behind it, on a nats-server of this module's own.
The suite holds when there is no server error (a 5xx, other than a deliberate 503 with Retry-After:
a service that is not there, the analyzer and executors here) and no schema violation: every status,
media type, header and body the gateway answers is the one its schema documents.

Bounded and reproducible: a few examples per operation and mode, derandomized, no shrinking. An
operation that generates nothing fails the test; none is skipped.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from artdag_common.nats_server import EmbeddedNatsServer, free_port
from artdag_dev.testing import nats_server, noop_tree_recipe
from tests.integration.gateway_harness import Harness, gateway_harness

ROLES = ("admin", "user", "anonymous")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
# Examples per operation, per generation mode (positive, negative).
EXAMPLES = {GenerationMode.POSITIVE: 12, GenerationMode.NEGATIVE: 8}
# Reproducible and bounded: the same examples on every run, no shrinking of a failure.
SETTINGS: dict[str, Any] = {
    "derandomize": True,
    "database": None,
    "deadline": None,
    "phases": [Phase.explicit, Phase.generate],
    "suppress_health_check": list(HealthCheck),
}
CHECKS = [status_code_conformance, content_type_conformance, response_headers_conformance, response_schema_conformance]
# Operations that end the token that calls them (a revocation): each example gets a token of its own.
SESSION_ENDING = {("POST", "/auth/revoke"), ("POST", "/auth/revoke-user")}
# Event streams last as long as their token: each example gets one that expires at once.
EVENT_STREAMS = {("GET", "/events/runs"), ("GET", "/events/run/{run_id}")}


@pytest.fixture(scope="module")
def own_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNatsServer]:
    """A nats-server for this module alone: the planner here starts runs nobody else may pick up."""
    with nats_server(tmp_path_factory.mktemp("attack-nats")) as server:
        yield server


@dataclass
class Target:
    harness: Harness
    base_url: str
    spec: dict[str, Any]
    loop: asyncio.AbstractEventLoop
    tokens: dict[str, str] = field(default_factory=dict)
    known: dict[str, dict[str, str]] = field(default_factory=dict)

    def token(self, user: str, roles: list[str], ttl_s: float | None = None) -> str:
        """A fresh token, issued on the loop that owns the bus connection (called from the worker thread)."""
        issued = asyncio.run_coroutine_threadsafe(self.harness.issue(user, roles=roles, ttl_s=ttl_s), self.loop)
        return issued.result(timeout=10)


@pytest.fixture(scope="module")
async def target(own_nats: EmbeddedNatsServer, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Target]:
    tmp = tmp_path_factory.mktemp("attack")
    async with gateway_harness(own_nats, tmp, start_planner=True, sse_recheck_s=0.1) as harness:
        port = free_port()
        config = uvicorn.Config(harness.app, host="127.0.0.1", port=port, lifespan="off", log_config=None)
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve())
        while not server.started:
            assert not serving.done(), "uvicorn did not start"
            await asyncio.sleep(0.01)
        tokens = {
            "admin": await harness.issue("attack-admin", roles=["admin"]),
            "user": await harness.issue("attack-user"),
        }
        found = Target(harness, f"http://127.0.0.1:{port}", harness.app.openapi(), asyncio.get_running_loop(), tokens)
        # Each role's examples name its own things (the anonymous one, the plain user's).
        found.known = {role: await _known_ids(harness, tokens[role]) for role in ("admin", "user")}
        found.known["anonymous"] = found.known["user"]
        try:
            yield found
        finally:
            server.should_exit = True
            await serving


async def _known_ids(harness: Harness, token: str) -> dict[str, str]:
    """Things that exist, made with `token`: content, a run, a recipe (an example), so that examples
    reach past "not found"."""
    headers = {"Authorization": f"Bearer {token}"}
    client = harness.anonymous
    content = await client.post("/cache/upload", headers=headers, files={"file": ("dot.png", PNG)})
    run = await client.post("/runs", headers=headers, json={"recipe": noop_tree_recipe(2, 17)})
    recipes = await client.get("/recipes", headers=headers)
    assert content.status_code == 201 and run.status_code == 202 and recipes.status_code == 200, run.text
    return {
        "cid": content.json()["cid"],
        "run_id": run.json()["run_id"],
        "recipe_id": recipes.json()["recipes"][0]["recipe_id"],
        "kind": "s3",
    }


def with_examples(spec: dict[str, Any], known: dict[str, str]) -> dict[str, Any]:
    """`spec` with an example for each path parameter that names something (tried first, in the explicit phase)."""
    for operations in spec["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] in known:
                    parameter["example"] = known[parameter["name"]]
    return spec


@dataclass
class Findings:
    calls: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: dict[str, str] = field(default_factory=dict)
    nothing_to_negate: list[str] = field(default_factory=list)


def _headers(target: Target, role: str, method: str, path: str) -> dict[str, str]:
    if role == "anonymous":
        return {}
    roles = ["admin"] if role == "admin" else []
    if (method, path) in SESSION_ENDING:
        token = target.token(f"attack-{role}", roles)
    elif (method, path) in EVENT_STREAMS:
        token = target.token(f"attack-{role}", roles, ttl_s=0.4)
    else:
        token = target.tokens[role]
    return {"Authorization": f"Bearer {token}"}


def _attack(target: Target, role: str) -> Findings:
    """Every operation, every mode, a few examples each (runs in a worker thread: hypothesis is synchronous)."""
    schema = schemathesis.openapi.from_dict(with_examples(copy.deepcopy(target.spec), target.known[role]))
    findings = Findings()
    with requests.Session() as session:
        operations = []
        for result in schema.get_all_operations():
            if isinstance(result, Err):  # an operation schemathesis cannot read fails the suite
                raise result.err()
            operations.append(result.ok())
        # Deletions last: the things the examples name stay for every other operation.
        for operation in sorted(operations, key=lambda op: op.method.upper() == "DELETE"):
            explicit = operation.get_strategies_from_examples()
            if explicit:  # what the schema's examples name (things that exist) first
                call = _caller(target, role, findings, session, operation.method.upper(), operation.path, "examples")
                settings(max_examples=2 * len(explicit), **SETTINGS)(given(case=st.one_of(*explicit))(call))()
            for mode, examples in EXAMPLES.items():
                label = f"{operation.method.upper()} {operation.path}"
                if mode is GenerationMode.NEGATIVE and not _negatable(target.spec, operation.method, operation.path):
                    findings.nothing_to_negate.append(label)
                    continue
                call = _caller(target, role, findings, session, operation.method.upper(), operation.path, mode)
                strategy = operation.as_strategy(generation_mode=mode)
                run = settings(max_examples=examples, **SETTINGS)(given(case=strategy)(call))
                try:
                    run()
                except Unsatisfiable:
                    if mode is not GenerationMode.NEGATIVE:
                        raise
                    findings.nothing_to_negate.append(label)
    return findings


def _negatable(spec: dict[str, Any], method: str, path: str) -> bool:
    """Whether an operation takes anything that can be sent invalid: a body, or a parameter with a type
    or a bound. (Unconstrained strings in the path or a header cannot be: every string is one.) Those that
    cannot are listed in the summary, never skipped silently."""
    operation = spec["paths"][path][method.lower()]
    if "requestBody" in operation:
        return True

    def plain(schema: dict[str, Any]) -> bool:
        if "anyOf" in schema:
            return all(plain(option) for option in schema["anyOf"])
        bounded = set(schema) - {"type", "title", "description", "default"}
        return schema.get("type") in ("string", "null") and not bounded

    return not all(plain(parameter.get("schema", {})) for parameter in operation.get("parameters", []))


def _caller(
    target: Target,
    role: str,
    findings: Findings,
    session: requests.Session,
    method: str,
    path: str,
    mode: GenerationMode | str,
) -> Callable[[schemathesis.Case[Any]], None]:
    """One example: call, look for a server error, validate the answer against the schema; note the first failure."""
    label = f"{method} {path} [{mode.value if isinstance(mode, GenerationMode) else mode}]"

    def call(case: schemathesis.Case[Any]) -> None:
        findings.calls[label] += 1
        headers = _headers(target, role, method, path)
        response = case.call(
            base_url=target.base_url, session=session, headers=headers, allow_redirects=False, timeout=30
        )
        findings.statuses[response.status_code] += 1
        problem = _server_error(response)
        if problem is None:
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
            except (AssertionError, FailureGroup) as exc:  # what the checks found
                problem = str(exc)
        if problem is not None and label not in findings.failures:
            curl = case.as_curl_command(headers={"Authorization": "Bearer …"} if headers else None)
            findings.failures[label] = f"{problem[:1500]}\n    {curl[:600]}"

    return call


def _server_error(response: schemathesis.Response) -> str | None:
    if response.status_code < 500:
        return None
    if response.status_code == 503 and (response.headers.get("retry-after") or [""])[0].isdigit():
        return None  # a deliberate "not now": a service that does not run here
    return f"server error {response.status_code}: {response.text[:300]}"


@pytest.mark.parametrize("role", ROLES)
async def test_schemathesis_finds_no_server_error_and_no_schema_violation(target: Target, role: str) -> None:
    started = time.monotonic()
    findings = await asyncio.to_thread(_attack, target, role)
    operations = {(m.upper(), p) for p, ops in target.spec["paths"].items() for m in ops}
    called = {tuple(label.split(" [", 1)[0].split(" ", 1)) for label in findings.calls if findings.calls[label]}
    assert called == operations, f"operations never called: {sorted(operations - called)}"
    negated = {tuple(label.split(" [", 1)[0].split(" ", 1)) for label in findings.calls if "[negative]" in label}
    assert negated | {tuple(op.split(" ", 1)) for op in findings.nothing_to_negate} == operations
    report = "\n".join(f"{label}:\n  {text}" for label, text in sorted(findings.failures.items()))
    assert findings.failures == {}, f"{len(findings.failures)} operations failed as {role}:\n{report}"
    # The attack reached past validation: every role got answers of several kinds.
    assert len(findings.statuses) >= 3, findings.statuses
    print(  # the summary the suite reports (with -s)
        f"\n{role}: {len(operations)} operations, {sum(findings.calls.values())} calls, "
        f"statuses {dict(sorted(findings.statuses.items()))}, {time.monotonic() - started:.1f} s; "
        f"no invalid data to make for {len(findings.nothing_to_negate)} ({', '.join(findings.nothing_to_negate)})"
    )
