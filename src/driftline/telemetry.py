"""Traces: one trace per mission, from the POST through the relay and every stage.

The W3C `traceparent` travels on every event (`ce_` headers); each hop starts its span
as a child of the context it received and hands its own context on, as the OpenTelemetry
messaging conventions describe (producer span → consumer span). Spans are always made
(so trace and span ids reach logs and events); they are exported over OTLP/HTTP only
when an endpoint is configured.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanProcessor
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from driftline.contracts.envelope import active_traceparent
from driftline.settings import Settings

_PROPAGATOR = TraceContextTextMapPropagator()
TRACER_NAME = "driftline"


def configure_tracing(
    settings: Settings, service: str, processor: SpanProcessor | None = None
) -> TracerProvider | None:
    """Install the process's tracer provider once; later calls leave it as it is.

    `processor` (a test's in-memory exporter) is added to whichever provider is active.
    """
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        if processor is not None:
            current.add_span_processor(processor)
        return current
    provider = TracerProvider(resource=Resource.create({"service.name": f"driftline-{service}"}))
    if processor is not None:
        provider.add_span_processor(processor)
    exporter = _otlp_exporter(settings)
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


def _otlp_exporter(settings: Settings) -> SpanExporter | None:
    if not settings.otlp_endpoint:
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=f"{settings.otlp_endpoint.rstrip('/')}/v1/traces")


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


@contextmanager
def span_from(
    name: str, traceparent: str | None, *, kind: SpanKind = SpanKind.INTERNAL, **attributes: Any
) -> Iterator[Span]:
    """A span whose parent is the W3C `traceparent` (a new trace if it is absent or invalid)."""
    carrier = {"traceparent": traceparent} if traceparent else {}
    context = _PROPAGATOR.extract(carrier)
    with tracer().start_as_current_span(
        name, context=context, kind=kind, attributes=attributes
    ) as span:
        yield span


@contextmanager
def span(name: str, **attributes: Any) -> Iterator[Span]:
    """A child of the current span."""
    with tracer().start_as_current_span(name, attributes=attributes) as current:
        yield current


current_traceparent = active_traceparent
