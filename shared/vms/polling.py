"""Waiting for a VMS export or clip, at the pace the vendor asks for (EEN: no faster than every 5 s)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from shared.vms.base import ClipStatus, VmsAdapter
from shared.vms.errors import VmsTransient

log = logging.getLogger(__name__)


def wait_for_clip(
    adapter: VmsAdapter,
    ticket: dict[str, Any],
    *,
    timeout: float,
    on_progress: Callable[[float], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> ClipStatus | None:
    """Poll until the clip is ready or failed; None when `should_stop` says so (e.g. the lock was lost).

    Polls are spaced by the adapter's `min_poll_interval` (at least 1 s) and the wait is bounded by
    `timeout`, after which VmsTransient lets the caller release the job and try again later.
    """
    interval = max(1.0, adapter.capabilities.min_poll_interval)
    deadline = clock() + timeout
    while True:
        status = adapter.poll_clip(ticket)
        if on_progress:
            on_progress(status.progress)
        if status.state in ("ready", "failed"):
            return status
        if should_stop():
            return None
        if clock() + interval > deadline:
            raise VmsTransient(
                f"{adapter.vendor}: the export was still {status.state} ({status.progress:.0%}) after {timeout:.0f} s",
                vendor=adapter.vendor,
            )
        sleep(interval)
