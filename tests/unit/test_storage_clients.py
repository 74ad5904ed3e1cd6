"""The storage clients as Azure builds them: identity-based service URIs (no connection string, no key).

No Azure AD is reachable here, so this checks the construction only: the endpoints, the credential type
(the user-assigned identity's ManagedIdentityCredential when a client id is set, DefaultAzureCredential
otherwise), one credential shared by the clients, and the queue's Base64 policies. No token is requested.
"""

from __future__ import annotations

import uuid

import pytest
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential
from azure.storage.queue import BinaryBase64DecodePolicy, BinaryBase64EncodePolicy

from shared.settings import AgentSettings
from shared.storage import queue_client, table_client
from tests.unit.test_agent_settings import valid_env

QUEUE_URI = "https://clearanceagent.queue.core.windows.net"
TABLE_URI = "https://clearanceagent.table.core.windows.net"


def identity_storage(client_id: str | None):
    env = valid_env(
        AzureWebJobsStorage=None,
        AzureWebJobsStorage__queueServiceUri=QUEUE_URI,
        AzureWebJobsStorage__tableServiceUri=TABLE_URI,
        AzureWebJobsStorage__clientId=client_id,
    )
    return AgentSettings.from_env(env).storage


@pytest.mark.parametrize(
    ("client_id", "credential_type"),
    [(str(uuid.uuid4()), ManagedIdentityCredential), (None, DefaultAzureCredential)],
    ids=["user-assigned", "default"],
)
def test_identity_based_storage_builds_keyless_clients_for_the_service_uris(client_id, credential_type):
    storage = identity_storage(client_id)

    queue = queue_client(storage, "clearance-jobs")
    table = table_client(storage, "clearancelocks")

    assert storage.connection_string is None and storage.managed_identity_client_id == client_id
    assert queue.url == f"{QUEUE_URI}/clearance-jobs" and queue.queue_name == "clearance-jobs"
    assert (table.url, table.table_name) == (TABLE_URI, "clearancelocks")
    assert queue.account_name == table.account_name == "clearanceagent"
    assert isinstance(queue.credential, credential_type)
    assert table.credential is queue.credential  # one credential per process and identity
    assert isinstance(queue._message_encode_policy, BinaryBase64EncodePolicy)  # what the queue trigger expects
    assert isinstance(queue._message_decode_policy, BinaryBase64DecodePolicy)


def test_a_connection_string_builds_key_clients_and_no_identity():
    storage = AgentSettings.from_env(valid_env()).storage  # UseDevelopmentStorage=true

    queue = queue_client(storage, "clearance-jobs")
    table = table_client(storage, "clearancelocks")

    assert queue.url.startswith("http://127.0.0.1:10001/devstoreaccount1/")
    assert table.url.startswith("http://127.0.0.1:10002/devstoreaccount1")
    assert not isinstance(queue.credential, ManagedIdentityCredential | DefaultAzureCredential)
