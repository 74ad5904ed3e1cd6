"""Timer trigger: placeholder until the function-app issue wires it to `shared/`."""

import logging

import azure.functions as func


def main(timer: func.TimerRequest) -> None:
    logging.getLogger(__name__).warning("poll_jobs is not wired yet: nothing to do")
