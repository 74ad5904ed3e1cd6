"""Telemetry set up once per worker process: Azure Monitor in Azure, in-memory exporters locally.

`CLEARANCE_TELEMETRY` chooses: `azuremonitor` (the default when APPLICATIONINSIGHTS_CONNECTION_STRING is
set), `memory` (the OpenTelemetry SDK with in-memory exporters: the benchmark's "telemetry on"), or `off`.

In Azure, host.json's `"telemetryMode": "OpenTelemetry"` makes the host export OpenTelemetry, and
`PYTHON_ENABLE_OPENTELEMETRY=true` makes the Python worker hand each invocation's trace context to our
code and stop the host from also forwarding our log lines. The worker's other switch,
PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY, would call `configure_azure_monitor()` itself *without a
credential*; Application Insights here has local auth off, so we configure the distro ourselves with the
app's managed identity (APPLICATIONINSIGHTS_AUTHENTICATION_STRING = `ClientId=…;Authorization=AAD`).

Nothing is sampled: traces at ratio 1.0 and logs never dropped with their trace, so every `Job ended`
line reaches the alerts. The distro's HTTP and Azure SDK auto-instrumentation is off: our own dependency
spans (tracing.py) cover Registry, VMS and Blob calls with redacted URLs, where the automatic ones would
record a SAS URL's signature.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from opentelemetry import _logs, metrics, trace
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor, ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    InMemoryLogRecordExporter,
    LogRecordExportResult,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.config import Settings, text
from shared.redact import install_log_scrubbing
from shared.telemetry.processors import JobDimensionsLogProcessor, JobDimensionsSpanProcessor

log = logging.getLogger(__name__)

MODE_SETTING = "CLEARANCE_TELEMETRY"
SERVICE_NAME = "clearance-agent"
# The distro's automatic instrumentation we turn off (see the module docstring).
_NOT_INSTRUMENTED = ("azure_sdk", "requests", "urllib", "urllib3", "django", "fastapi", "flask", "psycopg2")


class TelemetrySettings(Settings):
    """Read on their own (not part of AgentSettings): telemetry is set up before the agent's settings are
    checked, so a settings error is itself reported through it."""

    mode: str = text(MODE_SETTING, "")
    connection_string: str | None = text("APPLICATIONINSIGHTS_CONNECTION_STRING", None, secret=True)
    authentication: str = text("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", "")


class _GatedSpans(InMemorySpanExporter):
    """Keeps spans only while `collecting` (a test session installs telemetry once, for a few tests)."""

    collecting = True

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return super().export(spans) if self.collecting else SpanExportResult.SUCCESS


class _GatedLogs(InMemoryLogRecordExporter):
    collecting = True

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        return super().export(batch) if self.collecting else LogRecordExportResult.SUCCESS


@dataclass
class InMemoryTelemetry:
    """What the `memory` mode collects: for the telemetry tests and the benchmark."""

    spans: _GatedSpans
    logs: _GatedLogs
    metrics: InMemoryMetricReader
    handler: logging.Handler

    def collect(self, on: bool) -> None:
        """Start (clearing what was kept) or stop keeping spans and log records."""
        self.spans.clear()
        self.logs.clear()
        self.spans.collecting = self.logs.collecting = on


_lock = threading.Lock()
_mode: str | None = None
_memory: InMemoryTelemetry | None = None


def configure_telemetry(environ: Mapping[str, str] | None = None) -> str:
    """Set telemetry up for this process, once; returns the mode in effect."""
    global _mode
    settings = TelemetrySettings.from_env(environ)
    with _lock:
        if _mode is not None:
            return _mode
        mode = settings.mode.strip().lower()
        if not mode:
            mode = "azuremonitor" if settings.connection_string else "off"
        if mode == "azuremonitor":
            _configure_azure_monitor(settings)
        elif mode == "memory":
            _install_in_memory(batch=True)
            log.info("Telemetry: OpenTelemetry SDK with in-memory exporters (%s=memory)", MODE_SETTING)
        elif mode != "off":
            raise ValueError(f"{MODE_SETTING} must be azuremonitor, memory or off (not {mode!r})")
        _mode = mode
        return mode


def in_memory_telemetry(*, batch: bool = False) -> InMemoryTelemetry:
    """The in-memory exporters, installed on first call (tests: synchronous export, `batch` False)."""
    global _mode
    with _lock:
        if _memory is None:
            if _mode not in (None, "off"):
                raise RuntimeError(f"telemetry is already set up ({_mode})")
            _install_in_memory(batch=batch)
            _mode = "memory"
        assert _memory is not None
        return _memory


def in_memory() -> InMemoryTelemetry | None:
    return _memory


def _configure_azure_monitor(settings: TelemetrySettings) -> None:
    from azure.identity import ManagedIdentityCredential
    from azure.monitor.opentelemetry import configure_azure_monitor

    client_id = _aad_client_id(settings.authentication)
    credential = None
    if client_id is not None:
        credential = ManagedIdentityCredential(client_id=client_id or None)
    span_processors: list[SpanProcessor] = [JobDimensionsSpanProcessor()]
    log_processors: list[LogRecordProcessor] = [JobDimensionsLogProcessor()]
    configure_azure_monitor(
        connection_string=settings.connection_string,
        credential=credential,
        logger_name="",
        sampling_ratio=1.0,
        enable_trace_based_sampling_for_logs=False,
        enable_live_metrics=False,
        instrumentation_options={name: {"enabled": False} for name in _NOT_INSTRUMENTED},
        span_processors=span_processors,
        log_record_processors=log_processors,
        resource=Resource.create({"service.name": SERVICE_NAME}),
    )
    _scrub_otel_handlers()
    log.info("Telemetry: Azure Monitor (OpenTelemetry), %s", "managed identity" if credential else "connection string")


def _aad_client_id(authentication: str) -> str | None:
    """`ClientId=<id>;Authorization=AAD` → the id ("" for a system-assigned identity); None without AAD."""
    parts = dict(p.split("=", 1) for p in authentication.split(";") if "=" in p)
    if parts.get("Authorization", "").upper() != "AAD":
        return None
    return parts.get("ClientId", "")


def _install_in_memory(*, batch: bool) -> None:
    global _memory
    resource = Resource.create({"service.name": SERVICE_NAME})
    spans, reader = _GatedSpans(), InMemoryMetricReader()
    logs = _GatedLogs()  # type: ignore[no-untyped-call]
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(JobDimensionsSpanProcessor())
    tracer_provider.add_span_processor(BatchSpanProcessor(spans) if batch else SimpleSpanProcessor(spans))
    trace.set_tracer_provider(tracer_provider)
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(JobDimensionsLogProcessor())
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(logs) if batch else SimpleLogRecordProcessor(logs))
    _logs.set_logger_provider(logger_provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader], resource=resource))
    handler = LoggingHandler(logger_provider=logger_provider)
    install_log_scrubbing(handler)
    logging.getLogger().addHandler(handler)
    _memory = InMemoryTelemetry(spans, logs, reader, handler)


def _scrub_otel_handlers() -> None:
    """Secrets never leave in a log record: the same scrubbing filter on the exporter's handler."""
    install_log_scrubbing(*(h for h in logging.getLogger().handlers if isinstance(h, LoggingHandler)))
