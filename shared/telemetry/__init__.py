"""Telemetry: job dimensions on every log record and span, dependency spans, metrics (docs/telemetry.md).

setup.py       configure_telemetry(): once per worker (Azure Monitor, in-memory, or off)
context.py     job_context() / bind() / carry_context(): the job's dimensions, across threads
processors.py  stamp those dimensions on spans and log records
tracing.py     dependency spans, one span per message, one trace per job (traceparent in messages)
metrics.py     jobs ended, files and bytes delivered, seconds per file, VMS throughput, 429/5xx, queue age
"""

from shared.telemetry.context import DIMENSIONS, bind, carry_context, current_dimensions, job_context

# setup.py (the OpenTelemetry SDK, the Azure Monitor distro) is imported only by whoever sets telemetry up:
# the rest needs only the light opentelemetry-api.
__all__ = ["DIMENSIONS", "bind", "carry_context", "current_dimensions", "job_context"]
