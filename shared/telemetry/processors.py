"""OpenTelemetry processors that stamp the current job's dimensions on every span and log record.

Both run synchronously on the thread that starts the span or emits the record, before any batching, so
they see that thread's contextvars. A dimension the record already has (an `extra=` field) is kept. Log
records also get `thread.name` (a heartbeat's line from the run's own, `renew_…` from the renewal pool).
"""

from __future__ import annotations

import threading

from opentelemetry.context import Context
from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk.trace import Span, SpanProcessor

from shared.telemetry.context import current_dimensions


class JobDimensionsSpanProcessor(SpanProcessor):
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        for name, value in current_dimensions().items():
            if span.attributes is None or name not in span.attributes:
                span.set_attribute(name, value)


class JobDimensionsLogProcessor(LogRecordProcessor):
    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        attributes = log_record.log_record.attributes
        if attributes is None:
            return
        stamps = {**current_dimensions(), "thread.name": threading.current_thread().name}
        for name, value in stamps.items():
            if name not in attributes:
                attributes[name] = value  # type: ignore[index]  # mutable BoundedAttributes on a ReadWriteLogRecord

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
