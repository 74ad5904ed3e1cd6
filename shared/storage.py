"""Storage clients built in ONE place: the jobs queue (with the Base64 policies the Functions queue
trigger expects by default — a raw-text message would be silently poisoned) and the tables."""

from __future__ import annotations

import contextlib
from functools import cache

from azure.core.credentials import TokenCredential
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, TableServiceClient
from azure.storage.queue import BinaryBase64DecodePolicy, BinaryBase64EncodePolicy, QueueClient, QueueServiceClient

from shared.settings import StorageSettings


@cache
def _credential(client_id: str | None) -> TokenCredential:
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    return ManagedIdentityCredential(client_id=client_id) if client_id else DefaultAzureCredential()


def identity_credential(storage: StorageSettings) -> TokenCredential:
    """The app's identity (the storage identity's client id), for the other Azure services it uses."""
    return _credential(storage.managed_identity_client_id)


def queue_client(storage: StorageSettings, queue_name: str) -> QueueClient:
    encode, decode = BinaryBase64EncodePolicy(), BinaryBase64DecodePolicy()
    if storage.connection_string:
        return QueueClient.from_connection_string(
            storage.connection_string, queue_name, message_encode_policy=encode, message_decode_policy=decode
        )
    service = QueueServiceClient(
        _service_uri(storage.queue_service_uri, "queue"), credential=_credential(storage.managed_identity_client_id)
    )
    return service.get_queue_client(queue_name, message_encode_policy=encode, message_decode_policy=decode)


def table_client(storage: StorageSettings, table_name: str) -> TableClient:
    if storage.connection_string:
        return TableServiceClient.from_connection_string(storage.connection_string).get_table_client(table_name)
    service = TableServiceClient(
        _service_uri(storage.table_service_uri, "table"), credential=_credential(storage.managed_identity_client_id)
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
