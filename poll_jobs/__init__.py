"""Timer trigger (POLL_SCHEDULE): poll the Registry, lock jobs within capacity, record and enqueue them."""

import logging

import azure.functions as func

from shared.agent.poller import poll
from shared.agent.runtime import agent


def main(timer: func.TimerRequest) -> None:
    if timer.past_due:
        logging.getLogger(__name__).info("poll_jobs is running late")
    running = agent()
    poll(running.services, max_in_flight=running.settings.max_in_flight_jobs)
