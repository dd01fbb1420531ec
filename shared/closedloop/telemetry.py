"""OpenTelemetry setup and W3C trace-context propagation through NATS headers."""

import logging
from collections.abc import Mapping

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

log = logging.getLogger(__name__)

_provider: TracerProvider | None = None
_exporting = False  # some processor takes the spans (OTLP, or a test's)


def setup_tracing(service_name: str, otlp_endpoint: str = "",
                  extra_processor: SpanProcessor | None = None) -> TracerProvider:
    """Install one tracer provider per process. Spans are exported over OTLP/HTTP when an
    endpoint is configured; `extra_processor` lets tests collect spans in memory."""
    global _provider, _exporting
    _exporting = _exporting or bool(otlp_endpoint) or extra_processor is not None
    if _provider is None:
        _provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        trace.set_tracer_provider(_provider)
        if otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            endpoint = otlp_endpoint.rstrip("/") + "/v1/traces"
            _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    if extra_processor is not None:
        _provider.add_span_processor(extra_processor)
    return _provider


def shutdown_tracing() -> None:
    if _provider is not None:
        _provider.force_flush(timeout_millis=5000)


def instrument_app(app, engine) -> None:  # type: ignore[no-untyped-def]
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    # The server span carries the trace; its internal "http receive" / "http send" children (two more spans
    # per request, for every body chunk) told us nothing.
    FastAPIInstrumentor.instrument_app(app, excluded_urls="livez,readyz,metrics", exclude_spans=["receive", "send"])
    # A span per SQL statement only when spans go somewhere: with no exporter they were made and dropped,
    # ~10 % of notify's CPU per webhook (issue 14). Request and message spans stay: they carry the trace
    # context from the HTTP request through every event to the webhook.
    if _exporting:
        SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)


def current_trace_headers() -> dict[str, str]:
    """The active trace context as headers (`traceparent`, `tracestate`), to store with an event."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def context_from_headers(headers: Mapping[str, str] | None) -> otel_context.Context:
    return propagate.extract(dict(headers or {}))


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)
