"""The VMS's camera ids, remembered briefly by a worker, for the check every thumbnail job makes before it
is planned (are its cameras known to the VMS?). Listing them is a paginated walk of the whole account (ten
pages for 1,000 cameras); a worker planning many small jobs would repeat it for each.

Only a positive answer is ever taken from memory: a requested id missing from the remembered list makes
it list the cameras again before a job is canceled for an unknown camera. A camera deleted since it was
listed is caught when its snapshot is taken (reported missing, like any camera without an image).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from shared.vms.base import VmsAdapter

REMEMBER_SECONDS = 60.0


class KnownCameras:
    def __init__(self, seconds: float = REMEMBER_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._seconds = seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._ids: frozenset[str] = frozenset()
        self._listed_at: float | None = None
        self._vms: int | None = None

    def unknown(self, vms: VmsAdapter, requested: Iterable[str]) -> list[str]:
        """The requested camera ids `vms` does not know (listing its cameras unless all were seen lately)."""
        wanted = list(requested)
        with self._lock:
            fresh = (
                self._vms == id(vms) and self._listed_at is not None and self._clock() - self._listed_at < self._seconds
            )
            if fresh and all(camera in self._ids for camera in wanted):
                return []
        listed = frozenset(camera.id for camera in vms.list_cameras())
        with self._lock:
            self._ids, self._listed_at, self._vms = listed, self._clock(), id(vms)
        return [camera for camera in wanted if camera not in listed]
