"""OpenTelemetry set-up, W3C `traceparent` propagation through NATS headers, and log records.

Without `OTEL_EXPORTER_OTLP_ENDPOINT` spans are made (so trace ids still flow from
service to service in headers) but exported nowhere; code that would only add detail
to exported traces asks `exporting()` first, so it costs nothing when tracing is off.
"""

from __future__ import annotations

import contextvars
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import context, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger(__name__)

_propagator = TraceContextTextMapPropagator()
_exporting = False

# The run a log record or a span belongs to, for code that has one in hand (see `bind_run`).
current_run_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("artdag_run_id", default=None)

# Span attribute names, in one place so that dashboards and tests agree with the code.
RUN_ID = "artdag.run_id"
STEP_ID = "artdag.step_id"
NODE_TYPE = "artdag.node_type"
CACHE = "artdag.cache"  # "hit" or "miss"
FRAMES = "artdag.frames"
OUTPUT_CID = "artdag.output_cid"


def setup_tracing(service_name: str, otlp_endpoint: str | None) -> TracerProvider:
    """Install a tracer provider for this process; export over OTLP/HTTP if an endpoint is set.

    OpenTelemetry lets a process install its provider once: if one is installed already
    (several services in one test process), that one is kept and returned.
    """
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    provider = TracerProvider(resource=Resource.create({"service.name": f"artdag-{service_name}"}))
    trace.set_tracer_provider(provider)
    if otlp_endpoint:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found,unused-ignore]
                OTLPSpanExporter,
            )
        except ImportError:
            log.warning("OTLP endpoint set but the exporter is not installed (pip install 'artdag[otlp]')")
        else:
            # The exporter appends /v1/traces itself only when it reads the endpoint from the environment.
            endpoint = otlp_endpoint.rstrip("/")
            if not endpoint.endswith("/v1/traces"):
                endpoint += "/v1/traces"
            export_spans(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return provider


def export_spans(processor: SpanProcessor) -> Callable[[], None]:
    """Send finished spans to `processor` (OTLP in production, an in-memory exporter in tests).

    Returns a function that shuts the processor down and turns `exporting()` off again
    (a test's collector must not make the rest of the session pay for traces).
    """
    global _exporting
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider(resource=Resource.create({"service.name": "artdag"}))
        trace.set_tracer_provider(provider)
    provider.add_span_processor(processor)
    _exporting = True

    def stop() -> None:
        global _exporting
        _exporting = False
        processor.shutdown()

    return stop


def exporting() -> bool:
    """Whether spans go anywhere: detail that only a trace shows is worth computing only then."""
    return _exporting


def tracer(name: str) -> trace.Tracer:
    """The tracer for one module."""
    return trace.get_tracer(name)


def inject_headers(headers: dict[str, str] | None = None) -> dict[str, str]:
    """Headers carrying the current span's `traceparent` (and `tracestate`)."""
    carrier: dict[str, str] = dict(headers or {})
    _propagator.inject(carrier)
    return carrier


def extract_context(headers: Mapping[str, str] | None) -> context.Context:
    """The trace context a message's headers carry (empty if none)."""
    return _propagator.extract(dict(headers or {}))


def current_traceparent() -> str | None:
    """The current span's W3C `traceparent`, to carry a run's trace past the request that began it."""
    return inject_headers().get("traceparent")


def bind_run(run_id: str) -> contextvars.Token[str | None]:
    """Name the run that the current task works for, in its log records (undo with `current_run_id.reset`)."""
    return current_run_id.set(run_id)


# -- logs ---------------------------------------------------------------------------

# Attributes every LogRecord has: anything else on a record came from `extra=` and is logged as a field.
_RECORD_FIELDS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, service, logger, message, trace and run ids, extras."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = f"{span.trace_id:032x}"
            entry["span_id"] = f"{span.span_id:016x}"
        run_id = current_run_id.get()
        if run_id is not None:
            entry["run_id"] = run_id
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS and key not in entry:
                entry[key] = value if isinstance(value, str | int | float | bool) or value is None else repr(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)
