"""The one backoff of the agent's own retries through the queue (items, planning, failed messages)."""

from __future__ import annotations

import random

MAX_DELAY = 300.0


def backoff(base: float, attempt: int) -> float:
    """`base` doubling with each attempt (the first waits `base`), at most 5 minutes, with jitter so that
    items that failed together do not come back together."""
    delay = min(MAX_DELAY, base * 2.0 ** max(0, attempt - 1))
    return delay * random.uniform(0.8, 1.0)  # noqa: S311 - jitter, not security
