"""The agent's long-lived parts, built once per worker process from the app settings.

Function entry points call `agent()`; the first call sets telemetry up, validates the settings (a clear
error names every bad setting) and builds the pooled clients, later calls reuse them. Nothing heavy happens at import
time (Flex Consumption allows 30 s to start).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import timedelta

from azure.storage.queue import QueueClient

from shared.agent.locks.pause import AgentPause
from shared.agent.locks.records import LockRecords
from shared.agent.wiring.services import Services
from shared.agent.work.ledger import Ledger
from shared.redact import install_log_scrubbing
from shared.registry.client import RegistryClient
from shared.secrets.lock_tokens import lock_token_sealer
from shared.settings import AgentSettings
from shared.storage import identity_credential, queue_client, table_client
from shared.telemetry.context import set_worker_dimensions
from shared.telemetry.setup import configure_telemetry
from shared.upload.target import UploadTargetPolicy
from shared.upload.uploader import EncryptedBlobUploader, MiB, UploadSettings
from shared.vms.settings import build_adapter

log = logging.getLogger(__name__)


@dataclass
class Agent:
    settings: AgentSettings
    services: Services

    @property
    def queue(self) -> QueueClient:
        return self.services.queue

    @property
    def renew_margin(self) -> timedelta:
        return timedelta(seconds=self.settings.lock_renew_margin_seconds)

    @property
    def max_job_age(self) -> timedelta:
        return timedelta(minutes=self.settings.max_job_age_minutes)


_lock = threading.Lock()
_agent: Agent | None = None


def build_agent(settings: AgentSettings) -> Agent:
    set_worker_dimensions(vms=settings.vms.kind)  # telemetry: every record of this worker names its VMS
    registry = RegistryClient(settings.connection, settings.agent_id, agent_service_url=settings.agent_service_url)
    vms = build_adapter(
        settings.vms,
        token_table=table_client(settings.storage, settings.vms.een_token_table),
        credential=identity_credential(settings.storage) if settings.vms.credentials_key_uri else None,
    )
    uploader = EncryptedBlobUploader(
        UploadTargetPolicy(settings.upload_allowed_hosts, settings.upload_allow_http_loopback),
        UploadSettings(block_size=settings.upload_block_mib * MiB, concurrency=settings.upload_concurrency),
    )
    locks_table = table_client(settings.storage, settings.locks_table)
    services = Services(
        registry=registry,
        vms=vms,
        uploader=uploader,
        records=LockRecords(locks_table, sealer=lock_token_sealer(settings.connection)),
        ledger=Ledger(locks_table),
        queue=queue_client(settings.storage, settings.jobs_queue),
        poison_queue=queue_client(settings.storage, f"{settings.jobs_queue}-poison"),
        pause=AgentPause(locks_table, settings.agent_pause_seconds),
        progress_interval=settings.progress_interval_seconds,
        export_timeout=settings.export_timeout_seconds,
        max_tries=settings.max_dequeue_count,
        item_failure_limit=settings.item_failure_limit,
        release_limit=settings.release_limit,
        max_job_age=timedelta(minutes=settings.max_job_age_minutes),
        retention=timedelta(days=settings.retention_days),
        max_segment=timedelta(minutes=settings.max_segment_minutes),
        retry_delay=settings.retry_delay_seconds,
        wait_in_run=settings.export_wait_seconds,
    )
    return Agent(settings, services)


def agent() -> Agent:
    global _agent
    with _lock:
        if _agent is None:
            install_log_scrubbing(*logging.getLogger().handlers)
            configure_telemetry()  # once per worker: Azure Monitor in Azure (shared/telemetry/setup.py)
            _agent = build_agent(AgentSettings.from_env())
            log.info(
                "Agent %s ready: VMS %s, queue %s, max %d jobs in flight",
                _agent.settings.agent_id,
                _agent.settings.vms.kind,
                _agent.settings.jobs_queue,
                _agent.settings.max_in_flight_jobs,
            )
        return _agent
