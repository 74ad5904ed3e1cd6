"""An in-memory stand-in for azure-storage-queue's `QueueClient`: the calls the engine makes (`send_message`,
`create_queue`, `queue_name`), plus `receive()` for the test to take what was sent."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FakeMessage:
    id: str
    content: bytes
    visibility_timeout: int
    """Seconds the engine asked the message to stay invisible (recorded; the fake does not wait)."""
    dequeue_count: int = 1


class FakeQueue:
    """Messages in the order sent; `receive()` hands over every one of them (delays are only recorded)."""

    _ids = itertools.count(1)

    def __init__(self, queue_name: str = "jobs") -> None:
        self.queue_name = queue_name
        self._messages: list[FakeMessage] = []
        self._lock = threading.Lock()
        self.sent = 0

    def create_queue(self, **_: Any) -> None:
        return None

    def send_message(self, content: bytes, *, visibility_timeout: int | None = None, **_: Any) -> FakeMessage:
        message = FakeMessage(f"msg-{next(self._ids)}", bytes(content), visibility_timeout or 0)
        with self._lock:
            self._messages.append(message)
            self.sent += 1
        return message

    def receive(self) -> list[FakeMessage]:
        """Every message waiting, in order; the queue is left empty."""
        with self._lock:
            taken, self._messages = self._messages, []
        return taken

    def peek(self) -> list[FakeMessage]:
        with self._lock:
            return list(self._messages)
