"""Queue trigger (JOBS_QUEUE_NAME): one short run — plan a newly locked job, or run one of its work items."""

import azure.functions as func

from shared.agent.processor import process_message
from shared.agent.runtime import agent


def main(msg: func.QueueMessage) -> None:
    process_message(
        msg.get_body(),
        dequeue_count=msg.dequeue_count or 1,
        message_id=msg.id or "",
        services=agent().services,
    )
