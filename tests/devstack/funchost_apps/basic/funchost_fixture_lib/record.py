"""Appends one JSON line per event to the file named by the FUNCHOST_RECORD_FILE app setting."""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any


def record(event: str, **fields: Any) -> None:
    line = {
        "event": event,
        "time": time.time(),
        "pid": os.getpid(),
        "thread": threading.current_thread().name,
        **fields,
    }
    with open(os.environ["FUNCHOST_RECORD_FILE"], "a", encoding="utf-8") as file:
        file.write(json.dumps(line, default=str) + "\n")
