"""Queue trigger (JOBS_QUEUE_NAME): do one job — pull from the VMS, encrypt, upload, complete."""

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
