"""Records each message it gets; the JSON body can ask it to sleep or to fail.

{"sleep": s}        sleep s seconds on every attempt
{"sleep_first": s}  sleep s seconds on the first attempt only (dequeue_count 1)
{"fail": n}         raise on the first n attempts
{"gate": path}      wait (at most 60 s) until the file `path` exists: the test decides when the run ends
"""

import os
import time

import azure.functions as func
from funchost_fixture_lib.record import record


def main(msg: func.QueueMessage) -> None:
    try:
        command = msg.get_json()
    except ValueError:
        command = None
    if not isinstance(command, dict):
        command = {}
    fields = {
        "id": msg.id,
        "dequeue_count": msg.dequeue_count,
        "body": msg.get_body().decode("utf-8", errors="replace"),
        "json": command or None,
        "insertion_time": msg.insertion_time,
        "expiration_time": msg.expiration_time,
        "has_pop_receipt": bool(msg.pop_receipt),
    }
    record("start", **fields)
    if command.get("gate"):
        deadline = time.monotonic() + 60
        while not os.path.exists(command["gate"]) and time.monotonic() < deadline:
            time.sleep(0.02)
    time.sleep(command.get("sleep", 0))
    if msg.dequeue_count == 1:
        time.sleep(command.get("sleep_first", 0))
    if msg.dequeue_count <= command.get("fail", 0):
        record("fail", **fields)
        raise RuntimeError(f"failing on purpose (attempt {msg.dequeue_count})")
    record("done", **fields)
