"""One trace per run: HTTP request → planner → analyzer → every executor step → cache, over a real nats-server.

The services run in this process (each with its own runtime and NATS connection), so
one in-memory exporter sees every span; the trace still crosses NATS at every hop,
carried only by the `traceparent` header, as between pods.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from artdag_cli.demo_media import write_test_clip
from artdag_common import rpc, telemetry
from artdag_common.bus import connect
from artdag_common.contracts import Auth
from artdag_common.db import migrate
from artdag_common.runtime import ServiceRuntime
from artdag_common.schemas import IssueTokenRequest
from artdag_dev.testing import bus_settings, nats_server
from services.analyzer.app import start as start_analyzer
from services.analyzer.settings import AnalyzerSettings
from services.auth.app import start as start_auth
from services.auth.settings import AuthSettings
from services.cache.app import start as start_cache
from services.cache.settings import CacheSettings
from services.executor.app import start as start_executor
from services.executor.settings import ExecutorSettings
from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from services.planner.app import start as start_planner
from services.planner.settings import PlannerSettings

# A per-frame effect on a clip four times the chunk length: the planner asks the analyzer
# to probe the input, splits the effect into chunks and joins them, then resizes.
RECIPE = """
name: traced
inputs:
  video: {type: video}
steps:
  - id: fx
    type: EFFECT
    inputs: [video]
    config: {effect: invert}
  - id: small
    type: RESIZE
    inputs: [fx]
    config: {width: 64, height: 48}
output: small
"""


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    stop = telemetry.export_spans(SimpleSpanProcessor(exporter))
    try:
        yield exporter
    finally:
        stop()


@pytest.fixture
async def gateway(tmp_path: Path, spans: InMemorySpanExporter) -> AsyncIterator[httpx.AsyncClient]:
    home = tmp_path / "home"
    with nats_server(tmp_path / "nats") as nats:
        common: dict[str, Any] = {
            "home": home,
            "database_url": f"sqlite+aiosqlite:///{home / 'artdag.db'}",
        }
        await migrate(common["database_url"])
        runtimes: list[ServiceRuntime] = []
        services: list[tuple[str, Any, Any]] = [
            # The planner first: it provisions JetStream, which the others wait for.
            ("planner", PlannerSettings(**common, **bus_settings(nats, "planner"), chunk_seconds=1.0), start_planner),
            ("auth", AuthSettings(**common, **bus_settings(nats, "auth")), start_auth),
            ("cache", CacheSettings(**common, **bus_settings(nats, "cache")), start_cache),
            ("analyzer", AnalyzerSettings(**common, **bus_settings(nats, "analyzer")), start_analyzer),
            (
                "executor",
                ExecutorSettings(**common, **bus_settings(nats, "executor"), max_concurrent_steps=2),
                start_executor,
            ),
        ]
        try:
            for name, settings, start in services:
                runtime = ServiceRuntime(name, settings)
                runtimes.append(runtime)
                await runtime.open()
                await start(runtime, settings)
            admin = await connect(nats.url, "pytest-tracing", login=nats.admin)
            try:
                issued = await rpc.call(admin, Auth.issue, IssueTokenRequest(user="tracer"), timeout_s=5.0)
            finally:
                await admin.close()
            app = create_app(GatewaySettings(**common, **bus_settings(nats, "gateway")))
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(
                    transport=transport,
                    base_url="http://gateway",
                    timeout=30,
                    headers={"Authorization": f"Bearer {issued.token}"},
                ) as client:
                    yield client
        finally:
            for runtime in reversed(runtimes):
                runtime.stopping.set()
                await runtime.close()


async def _finished_run(client: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    for _ in range(600):
        body: dict[str, Any] = (await client.get(f"/runs/{run_id}")).json()
        if body["status"] in ("completed", "failed", "cancelled"):
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish: {body}")


def _trace_of(spans: list[ReadableSpan], root: ReadableSpan) -> list[ReadableSpan]:
    assert root.context is not None
    return [s for s in spans if s.context is not None and s.context.trace_id == root.context.trace_id]


async def _settled(spans: InMemorySpanExporter, done: Callable[[list[ReadableSpan]], bool]) -> list[ReadableSpan]:
    """The finished spans once `done` says the last expected ones have ended (a loaded machine is slow)."""
    for _ in range(100):
        found = list(spans.get_finished_spans())
        if done(found):
            return found
        await asyncio.sleep(0.05)
    return list(spans.get_finished_spans())


def _followed(spans: list[ReadableSpan]) -> set[str]:
    """Steps whose completion the planner handled (its `step event completed` spans)."""
    return {str((s.attributes or {}).get(telemetry.STEP_ID)) for s in spans if s.name == "step event completed"}


def _is_step(span: ReadableSpan) -> bool:
    """An executor's span of one step (not the planner's span of a step event)."""
    return span.name.startswith("step ") and not span.name.startswith("step event ")


async def test_a_run_is_one_connected_trace(
    gateway: httpx.AsyncClient, spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    clip = tmp_path / "clip.mp4"
    write_test_clip(clip, width=160, height=120, fps=24, duration_s=6.0)
    uploaded = await gateway.post("/cache/upload", files={"file": ("clip.mp4", clip.read_bytes(), "video/mp4")})
    assert uploaded.status_code == 201, uploaded.text
    spans.clear()

    submitted = await gateway.post("/runs", json={"recipe": RECIPE, "inputs": {"video": uploaded.json()["cid"]}})
    assert submitted.status_code == 202, submitted.text
    run_id = submitted.json()["run_id"]
    run = await _finished_run(gateway, run_id)
    assert run["status"] == "completed", run
    plan = (await gateway.get(f"/api/run/{run_id}/plan")).json()
    rendered = {s["step_id"]: s["node_type"] for s in plan["steps"] if s["node_type"] != "SOURCE"}
    # The effect and the resize are one pass (CHAIN), split into chunks joined by stream copy.
    assert set(rendered.values()) == {"CHAIN", "JOIN"}, rendered
    assert sum(node_type == "CHAIN" for node_type in rendered.values()) > 1, "the chain was split into chunks"

    # The planner's span for the last step event ends just after the run's state is written.
    finished = await _settled(spans, lambda found: _followed(found) >= set(rendered))
    roots = [s for s in finished if s.name == "POST /runs"]
    assert len(roots) == 1
    root = roots[0]
    assert root.parent is None, "the HTTP request starts the trace"
    trace = _trace_of(finished, root)
    assert root.context is not None
    assert run["traceparent"].split("-")[1] == f"{root.context.trace_id:032x}", "the run names its trace"
    ids = {s.context.span_id for s in trace if s.context is not None}
    orphans = [s.name for s in trace if s is not root and (s.parent is None or s.parent.span_id not in ids)]
    assert not orphans, f"spans whose parent is not in the run's trace: {orphans}"
    # Nothing of this run went to another trace.
    elsewhere = [s.name for s in finished if s not in trace and (s.attributes or {}).get(telemetry.RUN_ID) == run_id]
    assert not elsewhere, f"spans of the run outside its trace: {elsewhere}"

    names = [s.name for s in trace]
    assert "rpc planner.submit" in names and "plan run" in names
    assert "rpc analyzer.probe" in names, "the planner's question to the analyzer is in the trace"
    # Outputs are registered in batches (`Registrar`): a batch's span sits under the step that opened it.
    assert "rpc cache.register_many" in names, "outputs registered with the cache, in the trace"
    step_spans = {str((s.attributes or {})[telemetry.STEP_ID]): s for s in trace if _is_step(s)}
    assert set(step_spans) == set(rendered), "every executor step is in the trace"
    for step_id, span in step_spans.items():
        attributes = span.attributes or {}
        assert attributes[telemetry.RUN_ID] == run_id
        assert attributes[telemetry.NODE_TYPE] == rendered[step_id]
        assert attributes[telemetry.CACHE] == "miss"
        assert int(str(attributes[telemetry.FRAMES])) > 0, f"{span.name} counts its frames"
    events = [s for s in trace if s.name.startswith("step event ")]
    assert {str((s.attributes or {})[telemetry.STEP_ID]) for s in events} >= set(rendered), "the planner followed"
    submit = next(s for s in trace if s.name == "rpc planner.submit")
    assert (submit.attributes or {})[telemetry.RUN_ID] == run_id
    # Each step hangs off the run (the submission), not off whichever event made it ready.
    assert submit.context is not None
    assert all(s.parent is not None and s.parent.span_id == submit.context.span_id for s in step_spans.values())

    # The same run again: every step is a cache hit, found by the planner, still in a trace of its own.
    spans.clear()
    again = await gateway.post("/runs", json={"recipe": RECIPE, "inputs": {"video": uploaded.json()["cid"]}})
    rerun = await _finished_run(gateway, again.json()["run_id"])
    assert rerun["status"] == "completed" and rerun["output_cid"] == run["output_cid"]
    finished = await _settled(spans, lambda found: any(s.name == "plan run" for s in found))
    second = _trace_of(finished, next(s for s in finished if s.name == "POST /runs"))
    planned = next(s for s in second if s.name == "plan run")
    attributes = planned.attributes or {}
    assert attributes["artdag.steps_cached"] == attributes["artdag.steps"] == len(rendered)
    assert not [s for s in second if _is_step(s)], "nothing was rendered again"
