"""What every agent run needs, built once per worker process (see runtime.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from azure.storage.queue import QueueClient

from shared.agent.locks.pause import AgentPause
from shared.agent.locks.records import LockRecords
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
    max_attempts: int = 5
    """Failures a work item may have (errors the agent caught) before it is given up as Failed; also how
    many times a message may fail before it claims its work before it goes to the poison queue."""
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
