"""Queue trigger (JOBS_QUEUE_NAME): one short run — plan a newly locked job, or run one of its work items."""

from datetime import UTC, datetime

import azure.functions as func

from shared.agent.wiring.runtime import agent
from shared.agent.work.processor import process_message
from shared.telemetry import metrics


def main(msg: func.QueueMessage) -> None:
    services = agent().services
    if msg.insertion_time is not None:
        inserted = msg.insertion_time if msg.insertion_time.tzinfo else msg.insertion_time.replace(tzinfo=UTC)
        metrics.message_age((datetime.now(UTC) - inserted).total_seconds())
    process_message(
        msg.get_body(),
        dequeue_count=msg.dequeue_count or 1,
        message_id=msg.id or "",
        services=services,
    )
