"""Timer trigger (RENEW_SCHEDULE): renew the locks of in-flight jobs before they expire, and sweep."""

import azure.functions as func

from shared.agent.locks.renewer import renew_all
from shared.agent.wiring.runtime import agent


def main(timer: func.TimerRequest) -> None:
    running = agent()
    renew_all(running.services, margin=running.renew_margin)
