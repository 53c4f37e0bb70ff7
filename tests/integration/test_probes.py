"""The probe listener (`/livez`, `/readyz`, `/metrics`), JSON logs and settings for them."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from pathlib import Path

import httpx
import pytest
from nats.js.api import StreamConfig

from artdag_common import metrics, telemetry
from artdag_common import runtime as runtime_module
from artdag_common.nats_server import EmbeddedNatsServer, free_port
from artdag_common.runtime import ServiceRuntime
from artdag_common.settings import CommonSettings, load_settings
from artdag_common.streams import ConsumerDecl
from artdag_dev.testing import bus_settings, unique

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy/k8s/helm/artdag/dashboards/artdag.json"


def _samples(text: str, name: str, **labels: str) -> list[float]:
    """The values of the samples of `name` whose labels include `labels`."""
    found = []
    for line in text.splitlines():
        match = re.fullmatch(r"(\w+)\{(.*)\} (\S+)", line)
        if match and match[1] == name:
            have = dict(re.findall(r'(\w+)="([^"]*)"', match[2]))
            if all(have.get(k) == v for k, v in labels.items()):
                found.append(float(match[3]))
    return found


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of the one sample of `name` whose labels include `labels`."""
    found = _samples(text, name, **labels)
    assert len(found) == 1, f"{name}{labels}: {found}"
    return found[0]


async def test_probes_follow_the_nats_connection_and_metrics_are_served(
    nats: EmbeddedNatsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime_module, "LAG_POLL_S", 0.1)
    port = free_port()
    settings = CommonSettings(home=tmp_path, probe_port=port, **bus_settings(nats))
    runtime = ServiceRuntime("executor", settings)
    runtime.started = False
    await runtime.open()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.get("/livez")).status_code == 200
            head = await client.head("/livez")
            assert head.status_code == 200 and head.content == b""
            starting = await client.get("/readyz")
            assert starting.status_code == 503 and "starting" in starting.text
            runtime.started = True
            assert (await client.get("/readyz")).status_code == 200

            metrics.STEPS.add(2, {"node_type": "RESIZE", "outcome": "executed"})
            metrics.STEP_DURATION.record(0.3, {"node_type": "RESIZE"})

            # A work queue of this test's own: one message in hand, two waiting.
            name = unique("LAG")
            await runtime.js.add_stream(StreamConfig(name=name, subjects=[f"{name}.>"]))
            consumer = ConsumerDecl(stream=name, durable=name, filter_subject=f"{name}.>", ack_wait_s=30, max_deliver=1)
            await runtime.js.add_consumer(name, consumer.config())
            for n in range(3):
                await runtime.js.publish(f"{name}.work", str(n).encode())
            release = asyncio.Event()

            async def hold(_msg: object) -> None:
                await release.wait()

            runtime.run_consumer(consumer, hold, concurrency=1)
            try:
                for _ in range(50):  # until the poller has read the consumer with its message in hand
                    text = (await client.get("/metrics")).text
                    if _samples(text, "artdag_consumer_ack_pending", consumer=name) == [1.0]:
                        break
                    await asyncio.sleep(0.1)
                assert _sample(text, "artdag_consumer_pending", consumer=name, stream=name) == 2
                assert _sample(text, "artdag_consumer_ack_pending", consumer=name, stream=name) == 1
            finally:
                release.set()
            assert _sample(text, "artdag_steps_total", node_type="RESIZE", outcome="executed") >= 2
            assert _sample(text, "artdag_step_duration_seconds_bucket", le="0.5", node_type="RESIZE") >= 1
            assert (await client.get("/nope")).status_code == 404
            assert (await client.post("/readyz")).status_code == 405

            # Every series the Grafana dashboard queries is one the services export.
            metrics.RUNS.add(1, {"status": "completed"})
            metrics.RUN_DURATION.record(2.0, {"status": "completed"})
            metrics.CACHE_BYTES.add(10, {"origin": "upload"})
            exported = set(
                re.findall(
                    r"^(artdag_\w+?)(?:_bucket|_sum|_count)?\{", text + (await client.get("/metrics")).text, re.M
                )
            )
            dashboard = json.loads(DASHBOARD.read_text())
            queried = {
                name
                for panel in dashboard["panels"]
                for target in panel["targets"]
                for name in re.findall(r"\b(artdag_\w+?)(?:_bucket|_sum|_count)?\b", target["expr"])
            }
            assert queried and queried <= exported, f"the dashboard queries series nobody exports: {queried - exported}"

            await runtime.nc.close()
            gone = await client.get("/readyz")
            assert gone.status_code == 503 and "NATS" in gone.text
    finally:
        runtime.stopping.set()
        await runtime.close()


def test_json_logs_carry_trace_and_run_ids(capsys: pytest.CaptureFixture[str]) -> None:
    formatter = telemetry.JsonFormatter("planner")
    record = logging.LogRecord("artdag.x", logging.WARNING, __file__, 1, "step %s failed", ("s1",), None)
    record.attempt = 3
    tracer = telemetry.tracer("pytest")
    token = telemetry.bind_run("run-123")
    try:
        with tracer.start_as_current_span("work") as span:
            line = json.loads(formatter.format(record))
            trace_id = f"{span.get_span_context().trace_id:032x}"
    finally:
        telemetry.current_run_id.reset(token)
    assert line["message"] == "step s1 failed" and line["level"] == "WARNING" and line["service"] == "planner"
    assert line["run_id"] == "run-123" and line["attempt"] == 3
    if span.get_span_context().is_valid:
        assert line["trace_id"] == trace_id
    outside = json.loads(formatter.format(record))
    assert "run_id" not in outside and "trace_id" not in outside


def test_observability_settings_are_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTDAG_LOG_FORMAT", "JSON")
    monkeypatch.setenv("ARTDAG_PROBE_PORT", "9464")
    settings = CommonSettings()
    assert settings.log_format == "json" and settings.probe_port == 9464
    monkeypatch.setenv("ARTDAG_PROBE_PORT", "0")
    assert CommonSettings().probe_port is None
    for name, value in (("ARTDAG_LOG_FORMAT", "xml"), ("ARTDAG_PROBE_PORT", "70000")):
        monkeypatch.setenv(name, value)
        with pytest.raises(SystemExit) as info:
            load_settings(CommonSettings)
        assert f"  {name}: " in str(info.value.code)
        monkeypatch.delenv(name)
