"""OpenTelemetry set-up and W3C `traceparent` propagation through NATS headers.

Without `OTEL_EXPORTER_OTLP_ENDPOINT` spans are made (so trace ids still flow from
service to service in headers) but exported nowhere.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from opentelemetry import context, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger(__name__)

_propagator = TraceContextTextMapPropagator()


def setup_tracing(service_name: str, otlp_endpoint: str | None) -> TracerProvider:
    """Install a tracer provider for this process; export over OTLP/HTTP if an endpoint is set."""
    provider = TracerProvider(resource=Resource.create({"service.name": f"artdag-{service_name}"}))
    if otlp_endpoint:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found,unused-ignore]
                OTLPSpanExporter,
            )
        except ImportError:
            log.warning("OTLP endpoint set but the exporter is not installed (pip install 'artdag[otlp]')")
        else:
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    trace.set_tracer_provider(provider)
    return provider


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
