"""Timer trigger (POLL_SCHEDULE): poll the Registry, lock jobs within capacity, record and enqueue them."""

import logging

import azure.functions as func

from shared.agent.locks.poller import poll
from shared.agent.wiring.runtime import agent
from shared.telemetry import metrics
from shared.telemetry.queue_age import record_oldest_message_age


def main(timer: func.TimerRequest) -> None:
    if timer.past_due:
        logging.getLogger(__name__).info("poll_jobs is running late")
    running = agent()
    metrics.poll_ran()
    poll(running.services, max_in_flight=running.settings.max_in_flight_jobs)
    record_oldest_message_age(running.queue)
