"""What every agent run needs, built once per worker process (see runtime.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from azure.storage.queue import QueueClient

from shared.agent.jobs.cameras import KnownCameras
from shared.agent.locks.pause import AgentPause
from shared.agent.locks.records import LockRecords
from shared.agent.work.backoff import MAX_DELAY
from shared.agent.work.ledger import Ledger
from shared.registry.client import RegistryClient
from shared.upload.uploader import EncryptedBlobUploader
from shared.vms.base import VmsAdapter


@dataclass
class Services:
    registry: RegistryClient
    vms: VmsAdapter
    uploader: EncryptedBlobUploader
    records: LockRecords
    ledger: Ledger
    queue: QueueClient
    poison_queue: QueueClient
    pause: AgentPause
    progress_interval: float = 5.0
    export_timeout: float = 1800.0
    max_tries: int = 5
    """MAX_DEQUEUE_COUNT: how many times a message may fail before it claims its work (and a job's planning
    may fail) before it goes to the poison queue (and the job is released) — the host's own dequeue count."""
    item_failure_limit: int = 5
    """ITEM_FAILURE_LIMIT: failures a work item may have (errors the agent caught) before it is given up as
    Failed; runs that never reported back (their worker died) may be twice as many."""
    release_limit: int = 3
    """Releases of one job for a reason of its own; at its next lock after that, the job is canceled."""
    max_job_age: timedelta = timedelta(hours=3)
    """A job's whole life across locks; renewals stop and the job is released past it, canceled at its next lock."""
    retention: timedelta = timedelta(days=30)
    """How long the records, plans and items of finished jobs are kept."""
    max_segment: timedelta = timedelta(minutes=15)
    retry_delay: float = 15.0
    """Seconds before a work item that failed transiently runs again (doubling per attempt, at most 5 min)."""
    wait_in_run: float = 20.0
    """How long one run waits for a VMS export before handing the item back to the queue."""
    heartbeat_every: float = 10.0
    stale_after: float = 45.0
    """A Running item whose heartbeat is older than this may be taken over by another message (> heartbeat_every)."""
    sweep_after: float = 600.0
    """The sweep puts back on the queue an item or plan nothing has moved for this long (> the longest backoff)."""
    sleep: Callable[[float], None] = time.sleep
    known_cameras: KnownCameras = field(default_factory=KnownCameras)
    """The VMS's camera ids this worker listed lately (a thumbnail job's check: jobs/cameras.py)."""

    def __post_init__(self) -> None:
        check_timing(heartbeat_every=self.heartbeat_every, stale_after=self.stale_after, sweep_after=self.sweep_after)


class TimingError(ValueError):
    """The engine's waits contradict each other; the message names them and what they must satisfy."""


def check_timing(*, heartbeat_every: float, stale_after: float, sweep_after: float) -> None:
    """The engine's waits, validated together: a heartbeat must come well before another run may take the
    item over, and the sweep must never put back an item that is only waiting out its longest backoff."""
    problems = []
    if heartbeat_every <= 0:
        problems.append(f"heartbeat_every ({heartbeat_every:g} s) must be positive")
    if stale_after <= heartbeat_every:
        problems.append(
            f"stale_after ({stale_after:g} s) must exceed heartbeat_every ({heartbeat_every:g} s): a live run's "
            "item would be taken over between two of its heartbeats"
        )
    if sweep_after <= MAX_DELAY:
        problems.append(
            f"sweep_after ({sweep_after:g} s) must exceed the longest backoff ({MAX_DELAY:g} s): the sweep would "
            "re-send items that are only waiting for their retry"
        )
    if problems:
        raise TimingError("the engine's timing is inconsistent: " + "; ".join(problems))
