"""Spans: dependencies (Registry, VMS, Blob), one span per queue message, and one trace per job.

A job is one trace across instances: poll_jobs starts a root span when it takes a job, and every message
about that job (the job message, each item message, an item put back on the queue) carries the W3C
`traceparent` of the span that sent it. A message's run continues that trace and links to the Functions
invocation that ran it. URLs on spans are redacted (shared/redact.py), as in logs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared.redact import redact_url

TRACER_NAME = "clearance.agent"
_propagator = TraceContextTextMapPropagator()


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def current_traceparent() -> str:
    """The W3C traceparent of the current span, or "" when nothing is being traced."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent", "")


@contextmanager
def job_trace(name: str) -> Iterator[Span]:
    """A new trace for one job (a root span), linked to whatever run started it (the poll)."""
    yield from _span(name, otel_context.Context(), SpanKind.PRODUCER)


@contextmanager
def message_span(name: str, traceparent: str) -> Iterator[Span]:
    """One queue message's run: a child of the span that sent the message (its job's trace), linked to
    the invocation that runs it; without a traceparent, a child of the invocation."""
    parent = _propagator.extract({"traceparent": traceparent}) if traceparent else None
    yield from _span(name, parent, SpanKind.CONSUMER)


def _span(name: str, parent: otel_context.Context | None, kind: SpanKind) -> Iterator[Span]:
    invocation = trace.get_current_span().get_span_context()
    links = [Link(invocation)] if parent is not None and invocation.is_valid else []
    with tracer().start_as_current_span(name, context=parent, kind=kind, links=links) as span:
        yield span


@contextmanager
def dependency(service: str, operation: str, method: str, url: str) -> Iterator[Span]:
    """A call to Registry, VMS or Blob storage as a dependency span (CLIENT), with the redacted URL."""
    parts = urlsplit(url)
    attributes: dict[str, str | int] = {
        "clearance.service": service,
        "clearance.operation": operation,
        "http.request.method": method,
        "url.full": redact_url(url),
        "server.address": parts.hostname or "",
    }
    if parts.port:
        attributes["server.port"] = parts.port
    with tracer().start_as_current_span(
        f"{service} {operation}", kind=SpanKind.CLIENT, attributes=attributes, record_exception=False
    ) as span:
        yield span


def set_status_code(span: Span, status: int) -> None:
    span.set_attribute("http.response.status_code", status)
    if status >= 400:
        span.set_status(Status(StatusCode.ERROR))


def mark_failed(span: Span, reason: str) -> None:
    span.set_status(Status(StatusCode.ERROR, reason))
