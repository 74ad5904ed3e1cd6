"""Records each run (past_due, schedule status); sleeps FUNCHOST_TIMER_SLEEP s; fails if FUNCHOST_TIMER_FAIL is set."""

import os
import time

import azure.functions as func
from funchost_fixture_lib.record import record


def main(timer: func.TimerRequest) -> None:
    fields = {"past_due": timer.past_due, "schedule_status": timer.schedule_status}
    record("start", **fields)
    time.sleep(float(os.environ.get("FUNCHOST_TIMER_SLEEP", "0")))
    if os.environ.get("FUNCHOST_TIMER_FAIL"):
        raise RuntimeError("timer failing on purpose")
    record("done", **fields)
