"""What every agent run needs, built once per worker process (see runtime.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from azure.storage.queue import QueueClient

from shared.agent.ledger import Ledger
from shared.agent.records import LockRecords
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
    progress_interval: float = 5.0
    export_timeout: float = 1800.0
    max_attempts: int = 5
    """Runs a work item gets (crashes included) before it is given up as Failed."""
    max_segment: timedelta = timedelta(minutes=15)
    retry_delay: float = 15.0
    """Seconds before a work item that failed transiently runs again (doubling per attempt, at most 5 min)."""
    wait_in_run: float = 20.0
    """How long one run waits for a VMS export before handing the item back to the queue."""
    heartbeat_every: float = 10.0
    sleep: Callable[[float], None] = time.sleep
