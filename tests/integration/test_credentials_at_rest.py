"""No credential at rest in plain text: after real work for EEN, Rhombus and Verkada (token refreshes
included), every table entity, queue message and blob's metadata in storage is searched for every secret
the simulators issued, and for the Clearance lock tokens in the operators' lock table."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator

import pytest
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from devstack.stack import LocalStack
from shared.agent.wiring.runtime import Agent
from tests.integration.agent_helpers import drain, poll_once, quick_agent, recorded_camera, window

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def own_stack():
    """A stack of its own: the scan reads *all* of storage, which must hold only this test's work."""
    with LocalStack(state_dir=None) as running:
        yield running


def run_locked(stack: LocalStack, agent: Agent, jobs: list[str]) -> list[str]:
    """Lock the jobs, note the lock tokens the Registry handed out, then do the work; the tokens."""
    poll_once(agent)
    tokens = [stack.sim.job(job)["Lock"]["LockToken"] for job in jobs]
    drain(agent)
    for job in jobs:
        assert stack.sim.job(job)["State"] == "Completed", stack.sim.job(job)
    return tokens


def test_credentials_at_rest(own_stack):
    stack = own_stack
    lock_tokens: dict[str, list[str]] = {}  # lock table name -> the tokens of the jobs it recorded

    # EEN: the first refresh, work, then every access token expired: a 401, a second refresh, more work.
    een = stack.een.control
    een.configure(BitrateKbps=32)
    agent = quick_agent(stack, vms="een")
    camera, start, end = recorded_camera(een, minutes=5)
    media = stack.sim.create_job("mediarequest", {"Cameras": [window(camera, start, end)]})["Id"]
    tokens = run_locked(stack, agent, [media])
    refreshes = een.tokens()["Refreshes"]
    een.expire_access_tokens()
    thumbnail = stack.sim.create_job("thumbnail", {"CameraIds": [camera]})["Id"]
    tokens += run_locked(stack, agent, [thumbnail])
    assert een.tokens()["Refreshes"] > refreshes  # the expiry made the agent refresh (and rotate) the grant
    lock_tokens[agent.settings.locks_table] = tokens

    # Rhombus: an API key only (never stored), a thumbnail and the camera list.
    rhombus = stack.rhombus.control
    agent = quick_agent(stack, vms="rhombus")
    camera = rhombus.add_camera(Name="lobby")["Id"]
    jobs = [
        stack.sim.create_job("thumbnail", {"CameraIds": [camera]})["Id"],
        stack.sim.create_job("discovery", {})["Id"],
    ]
    lock_tokens[agent.settings.locks_table] = run_locked(stack, agent, jobs)

    # Verkada: API token and streaming JWT minted and shared, then both expired and minted again.
    verkada = stack.verkada.control
    verkada.configure(BitrateKbps=32)
    agent = quick_agent(stack, vms="verkada")
    camera, start, end = recorded_camera(verkada, minutes=5)
    media = stack.sim.create_job("mediarequest", {"Cameras": [window(camera, start, end)]})["Id"]
    tokens = run_locked(stack, agent, [media])
    minted = verkada.verkada_tokens()
    verkada.expire_verkada_tokens()
    media = stack.sim.create_job("mediarequest", {"Cameras": [window(camera, start, end)]})["Id"]
    tokens += run_locked(stack, agent, [media])
    again = verkada.verkada_tokens()
    assert again["ApiTokensMinted"] > minted["ApiTokensMinted"]
    assert again["StreamTokensMinted"] > minted["StreamTokensMinted"]
    lock_tokens[agent.settings.locks_table] = tokens

    issued = stack.vms.issued_credentials()
    assert len(issued["een refresh/access tokens"]) >= 5  # the consent's, and two refreshes' pairs
    assert len(issued["verkada api/stream tokens"]) >= 4
    secrets = {value: name for name, values in issued.items() for value in values}

    found = [
        f"{name} in {where}" for where, text in stored_values(stack) for value, name in secrets.items() if value in text
    ]
    assert not found, "credentials stored in plain text: " + "; ".join(sorted(set(found)))

    tables = TableServiceClient.from_connection_string(stack.storage_connection_string)
    for table_name, tokens in lock_tokens.items():
        assert len(tokens) == len(set(tokens)) >= 1
        rows = list(tables.get_table_client(table_name).list_entities())
        assert any(row["PartitionKey"] == "job" for row in rows)  # the records are there...
        leaked = [row["RowKey"] for row in rows for token in tokens if token in repr(dict(row))]
        assert not leaked, f"lock tokens readable in the operators' table {table_name}: rows {leaked}"


def stored_values(stack: LocalStack) -> Iterator[tuple[str, str]]:
    """(where, text) for everything kept in storage: every table entity, queue message and blob's metadata."""
    connection = stack.storage_connection_string
    tables = TableServiceClient.from_connection_string(connection)
    for table in tables.list_tables():
        for entity in tables.get_table_client(table.name).list_entities():
            yield f"table {table.name} row {entity['PartitionKey']}/{entity['RowKey']}", repr(dict(entity))
    queues = QueueServiceClient.from_connection_string(connection)
    for queue in queues.list_queues():
        for message in queues.get_queue_client(queue.name).peek_messages(max_messages=32):
            yield f"queue {queue.name}", str(message.content) + _decoded(str(message.content))
    blobs = BlobServiceClient.from_connection_string(connection)
    for container in blobs.list_containers(include_metadata=True):
        yield f"container {container.name}", repr(container.metadata)
        for blob in blobs.get_container_client(container.name).list_blobs(include=["metadata"]):
            yield f"blob {container.name}/{blob.name}", blob.name + repr(blob.metadata)


def _decoded(content: str) -> str:
    """Queue messages are Base64 (the Functions trigger's encoding): search the text they carry too."""
    try:
        return base64.b64decode(content, validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return ""
