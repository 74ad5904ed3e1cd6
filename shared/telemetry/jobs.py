"""The telemetry scope of one queue message's run: its job's dimensions and its place in the job's trace."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from shared.agent.work.messages import ItemMessage, JobMessage
from shared.telemetry.context import job_context
from shared.telemetry.tracing import message_span


@contextmanager
def message_scope(message: JobMessage | ItemMessage, *, redelivered: bool = False) -> Iterator[None]:
    """Everything logged or traced while the message runs names its job (and item), in the job's trace."""
    if isinstance(message, ItemMessage):
        dims = {"job_id": message.job_id, "item_id": message.item_id, "generation": message.generation}
        name = "process_job item"
    else:
        dims = {"job_id": message.job_id, "job_type": message.job_type}
        name = "process_job plan"
    if redelivered:
        name = "process_job refresh"
    with job_context(**dims), message_span(name, message.traceparent):
        yield
