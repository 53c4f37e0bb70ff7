"""OpenTelemetry metrics, read by Prometheus from each service's probe listener (`/metrics`).

The instruments are declared here, once, so that the dashboard and the code agree on
names. Until `setup_metrics` installs a meter provider (the probe port is set), they
are OpenTelemetry's no-op instruments: recording costs about a function call.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

log = logging.getLogger(__name__)

_meter = metrics.get_meter("artdag")

# Seconds: a NOOP takes a millisecond, a long effect minutes.
_STEP_BUCKETS = (0.005, 0.02, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 180, 600)
_RUN_BUCKETS = (0.05, 0.25, 1, 2.5, 5, 10, 30, 60, 180, 600, 1800, 3600)

STEPS = _meter.create_counter(
    "artdag.steps",
    unit="{step}",
    description="Steps that finished, by node type and outcome: executed, cached (result reused) or failed",
)
STEP_DURATION = _meter.create_histogram(
    "artdag.step.duration",
    unit="s",
    description="Time to render a step, by node type",
    explicit_bucket_boundaries_advisory=_STEP_BUCKETS,
)
RUNS = _meter.create_counter("artdag.runs", unit="{run}", description="Runs that finished, by status")
RUN_DURATION = _meter.create_histogram(
    "artdag.run.duration",
    unit="s",
    description="Time from a run's submission to its end, by status",
    explicit_bucket_boundaries_advisory=_RUN_BUCKETS,
)
CACHE_BYTES = _meter.create_counter(
    "artdag.cache.stored", unit="By", description="Bytes of content registered in the cache, by origin"
)


@dataclass
class ConsumerLag:
    """The last-read backlog of the JetStream consumers this process consumes (see `runtime`)."""

    pending: dict[tuple[str, str], int] = field(default_factory=dict)
    ack_pending: dict[tuple[str, str], int] = field(default_factory=dict)

    def observe_pending(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(n, {"stream": s, "consumer": c}) for (s, c), n in self.pending.items()]

    def observe_ack_pending(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(n, {"stream": s, "consumer": c}) for (s, c), n in self.ack_pending.items()]


LAG = ConsumerLag()
_meter.create_observable_gauge(
    "artdag.consumer.pending",
    callbacks=[LAG.observe_pending],
    unit="{message}",
    description="Messages waiting for a consumer (queue lag)",
)
_meter.create_observable_gauge(
    "artdag.consumer.ack_pending",
    callbacks=[LAG.observe_ack_pending],
    unit="{message}",
    description="Messages handed out and not yet acknowledged",
)

_installed = False


def setup_metrics(service: str) -> bool:
    """Install a meter provider read by Prometheus; False if the exporter is not installed.

    Once per process (OpenTelemetry's rule); a second call is a no-op that returns True.
    """
    global _installed
    if _installed:
        return True
    try:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
    except ImportError:  # pragma: no cover - it is a dependency; a trimmed install may lack it
        log.warning("opentelemetry-exporter-prometheus is not installed: /metrics stays empty")
        return False
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource

    provider = MeterProvider(
        metric_readers=[PrometheusMetricReader()],
        resource=Resource.create({"service.name": f"artdag-{service}"}),
    )
    metrics.set_meter_provider(provider)
    _installed = True
    return True


def prometheus_text() -> bytes:
    """The current metrics in Prometheus' text format (what `/metrics` answers)."""
    from prometheus_client import REGISTRY, generate_latest

    return generate_latest(REGISTRY)
