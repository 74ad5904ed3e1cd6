"""The age of the oldest message on the jobs queue, measured once per poll (one peek, no write).

Storage has no per-queue age metric; this one feeds the backlog alert (docs/telemetry.md). A message that
is invisible (being run, or waiting for a retry) is not seen by a peek: the age is of the oldest visible one,
which is exactly what a backlog is.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from azure.core.exceptions import AzureError
from azure.storage.queue import QueueClient

from shared.telemetry import metrics

log = logging.getLogger(__name__)


def record_oldest_message_age(queue: QueueClient) -> float | None:
    """Seconds since the oldest visible message was inserted (0 for an empty queue); None if unknown."""
    try:
        peeked = queue.peek_messages(max_messages=1)
    except AzureError as exc:
        log.warning("Could not peek at the jobs queue for its oldest message (%s)", type(exc).__name__)
        return None
    age = 0.0
    if peeked and peeked[0].inserted_on is not None:
        age = max(0.0, (datetime.now(UTC) - peeked[0].inserted_on).total_seconds())
    metrics.message_age(age, oldest=True)
    return age
