"""Timer triggers: one listener thread per timer function, running it on its NCRONTAB schedule.

Like the real host:
- only the host holding the function's singleton lease (locks/<host id>/<function>.listener) runs
  the timer; the others retry and take over when the holder stops or its lease expires;
- runs never overlap: the function runs in the listener thread, and the next occurrence is computed
  from the start of the previous run, so occurrences missed during a long run collapse into one run
  right after it (funchost passes past_due=True to that late run);
- useMonitor keeps {Last, Next, LastUpdated} in timers/<host id>/<function>/status; a host that
  starts after a missed occurrence runs the function at once with past_due=True;
- runOnStartup runs it when the listener starts (on acquiring the lease); exceptions are only logged.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.functions.timer import TimerRequest
from azure.storage.blob import BlobServiceClient

from .invocation import Invoker
from .leases import HOSTS_CONTAINER, BlobLease
from .loader import Function, TimerTrigger
from .storage import redact

log = logging.getLogger("devstack.funchost.timers")

_TICK = 0.5  # how often a waiting listener checks for stop and lease loss


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ScheduleStatus:
    last: datetime | None
    next: datetime
    last_updated: datetime | None

    def to_dict(self) -> dict[str, str | None]:
        def iso(moment: datetime | None) -> str | None:
            return moment.isoformat() if moment is not None else None

        return {"Last": iso(self.last), "Next": iso(self.next), "LastUpdated": iso(self.last_updated)}

    @classmethod
    def from_dict(cls, data: dict[str, str | None]) -> ScheduleStatus:
        def parse(text: str | None) -> datetime | None:
            return datetime.fromisoformat(text) if text else None

        next_time = parse(data.get("Next"))
        if next_time is None:
            raise ValueError("schedule status without Next")
        return cls(parse(data.get("Last")), next_time, parse(data.get("LastUpdated")))


class ScheduleMonitor:
    """The status blob of useMonitor."""

    def __init__(self, service: BlobServiceClient, host_id: str, function_name: str) -> None:
        self._blob = service.get_blob_client(HOSTS_CONTAINER, f"timers/{host_id}/{function_name}/status")

    def load(self) -> ScheduleStatus | None:
        try:
            return ScheduleStatus.from_dict(json.loads(self._blob.download_blob().readall()))
        except ResourceNotFoundError:
            return None
        except ValueError as error:
            log.warning("ignoring unreadable timer status %s: %s", self._blob.blob_name, error)
            return None

    def save(self, status: ScheduleStatus) -> None:
        self._blob.upload_blob(json.dumps(status.to_dict()).encode(), overwrite=True)


class TimerListener:
    def __init__(
        self,
        function: Function,
        invoker: Invoker,
        service: BlobServiceClient,
        *,
        host_id: str,
        instance_id: str,
        lease_duration: int = 15,
        lease_retry_interval: float = 5.0,
    ) -> None:
        assert isinstance(function.trigger, TimerTrigger)
        self.function = function
        self._trigger: TimerTrigger = function.trigger
        self._invoker = invoker
        self._lease = BlobLease(
            service, f"locks/{host_id}/{function.name}.listener", owner=instance_id, duration=lease_duration
        )
        self._monitor = ScheduleMonitor(service, host_id, function.name) if self._trigger.use_monitor else None
        self._retry_interval = lease_retry_interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{instance_id}/{function.name}", daemon=True)

    @property
    def is_singleton(self) -> bool:
        """Whether this host holds the timer's lease (runs the timer) now."""
        return self._lease.held

    def start(self) -> None:
        self._thread.start()

    def stop_accepting(self) -> None:
        self._stop.set()

    def wait_idle(self, timeout: float | None) -> bool:
        """Waits for a running invocation to end; False if it still runs after `timeout` seconds."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def close(self) -> None:
        self._lease.release()

    # -- the listener thread -----------------------------------------------------------------

    def _run(self) -> None:
        name = self.function.name
        try:
            while not self._stop.is_set():
                try:
                    acquired = self._lease.try_acquire()
                except AzureError as error:
                    log.warning("timer %s: cannot reach the lock blob: %s", name, redact(error))
                    acquired = False
                if not acquired:
                    self._stop.wait(self._retry_interval)
                    continue
                log.info("timer %s: singleton lock acquired; schedule %s (UTC)", name, self._trigger.schedule)
                try:
                    self._run_schedule()
                except AzureError as error:
                    log.warning("timer %s: storage error (%s); restarting the listener", name, redact(error))
                    self._stop.wait(self._retry_interval)
                if not self._stop.is_set() and not self._lease.held:
                    log.warning("timer %s: singleton lock lost; another host may run the timer now", name)
        finally:
            self._lease.release()

    def _run_schedule(self) -> None:
        schedule = self._trigger.schedule
        now = utcnow()
        status = self._monitor.load() if self._monitor is not None else None
        past_due, reason = False, "Timer fired"
        if status is not None and status.next <= now:
            log.info("timer %s is past due (missed %s)", self.function.name, status.next.isoformat())
            due, past_due, reason = now, True, "IsPastDue"
        elif self._trigger.run_on_startup:
            due, reason = now, "RunOnStartup"
        else:
            due = schedule.next_after(now)
        if status is None:
            status = ScheduleStatus(last=None, next=schedule.next_after(now), last_updated=None)
            self._save(status)
        log.info(
            "timer %s: next occurrences %s",
            self.function.name,
            [t.isoformat() for t in schedule.next_occurrences(now, 3)],
        )
        while self._wait_until(due):
            started = utcnow()
            request = TimerRequest(
                past_due=past_due,
                schedule_status=status.to_dict() if self._monitor is not None else None,
                schedule={"AdjustForDST": True},
            )
            self._invoker.invoke(self.function, request, reason=reason, details=f"PastDue={past_due}")
            # a scheduled run that started a little early counts from its schedule time, as in the real host
            counted_from = started if reason != "Timer fired" else max(started, due)
            status = ScheduleStatus(last=counted_from, next=schedule.next_after(counted_from), last_updated=utcnow())
            self._save(status)
            due = status.next
            past_due = due <= utcnow()  # the run overran its next occurrence: run once more at once
            reason = "IsPastDue" if past_due else "Timer fired"

    def _wait_until(self, due: datetime) -> bool:
        """Sleeps until `due`; False when stopping or when the lease was lost meanwhile."""
        while not self._stop.is_set() and self._lease.held:
            remaining = (due - utcnow()).total_seconds()
            if remaining <= 0:
                return True
            self._stop.wait(min(remaining, _TICK))
        return False

    def _save(self, status: ScheduleStatus) -> None:
        if self._monitor is None:
            return
        try:
            self._monitor.save(status)
        except AzureError as error:
            log.warning("timer %s: could not save its schedule status: %s", self.function.name, redact(error))
