"""Storage clients built in ONE place: the jobs queue (with the Base64 policies the Functions queue
trigger expects by default — a raw-text message would be silently poisoned) and the tables.

Both retry a failed request after about 1, 3 and 5 s instead of the SDKs' defaults (the queue's first
retry waits 15 s, the tables' backoff grows to 2 minutes): one reset connection must not stall a run, and
longer outages are the work item's own retry's to ride out (it backs off for minutes)."""

from __future__ import annotations

import contextlib
from functools import cache
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, TableServiceClient
from azure.storage.queue import (
    BinaryBase64DecodePolicy,
    BinaryBase64EncodePolicy,
    ExponentialRetry,
    QueueClient,
    QueueServiceClient,
)

from shared.http.session import storage_transport
from shared.settings import StorageSettings

STORAGE_POOL_SIZE = 32
"""Connections to the Table and Queue services kept open per worker (its threads share them)."""


@cache
def _transport() -> Any:
    """One transport for every Table and Queue client of this worker (see shared/http/session.py)."""
    return storage_transport(STORAGE_POOL_SIZE)


@cache
def _credential(client_id: str | None) -> TokenCredential:
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    return ManagedIdentityCredential(client_id=client_id) if client_id else DefaultAzureCredential()


def identity_credential(storage: StorageSettings) -> TokenCredential:
    """The app's identity (the storage identity's client id), for the other Azure services it uses."""
    return _credential(storage.managed_identity_client_id)


STORAGE_RETRIES = 3
TABLE_RETRY: dict[str, Any] = {"retry_total": STORAGE_RETRIES, "retry_backoff_factor": 1.0, "retry_backoff_max": 5}
"""azure-core's backoff: factor × 2^(n-1) s, capped — about 1, 2, 4 s."""


def queue_retry() -> ExponentialRetry:
    return ExponentialRetry(initial_backoff=1, increment_base=2, retry_total=STORAGE_RETRIES, random_jitter_range=1)


def queue_client(storage: StorageSettings, queue_name: str) -> QueueClient:
    options: dict[str, Any] = {
        "message_encode_policy": BinaryBase64EncodePolicy(),
        "message_decode_policy": BinaryBase64DecodePolicy(),
        "retry_policy": queue_retry(),
        "transport": _transport(),
    }
    if storage.connection_string:
        return QueueClient.from_connection_string(storage.connection_string, queue_name, **options)
    service = QueueServiceClient(
        _service_uri(storage.queue_service_uri, "queue"),
        credential=_credential(storage.managed_identity_client_id),
        retry_policy=queue_retry(),
        transport=_transport(),
    )
    return service.get_queue_client(queue_name, **options)


def table_client(storage: StorageSettings, table_name: str) -> TableClient:
    if storage.connection_string:
        service = TableServiceClient.from_connection_string(
            storage.connection_string, transport=_transport(), **TABLE_RETRY
        )
    else:
        service = TableServiceClient(
            _service_uri(storage.table_service_uri, "table"),
            credential=_credential(storage.managed_identity_client_id),
            transport=_transport(),
            **TABLE_RETRY,
        )
    return service.get_table_client(table_name)


def _service_uri(uri: str | None, service: str) -> str:
    if not uri:
        raise ValueError(f"no storage connection string and no {service} service URI")
    return uri


def send_message(queue: QueueClient, body: bytes, *, visibility_timeout: int = 0) -> None:
    """Enqueue (visible after `visibility_timeout` seconds), creating the queue on first use (Azure
    deployments create it; a fresh local stack may not)."""
    options = {"visibility_timeout": visibility_timeout} if visibility_timeout else {}
    try:
        queue.send_message(body, **options)
    except ResourceNotFoundError:
        with contextlib.suppress(ResourceExistsError):
            queue.create_queue()
        queue.send_message(body, **options)
