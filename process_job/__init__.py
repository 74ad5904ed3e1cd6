"""Queue trigger: placeholder until the function-app issue wires it to `shared/`."""

import logging

import azure.functions as func


def main(msg: func.QueueMessage) -> None:
    logging.getLogger(__name__).warning("process_job is not wired yet: message %s left unprocessed", msg.id)
    raise RuntimeError("process_job is not implemented yet")
