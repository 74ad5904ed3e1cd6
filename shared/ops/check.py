"""`ops check`: a preflight with the real settings, one line per check, before trusting a deployment.

    Key Vault   every `@Microsoft.KeyVault(...)` setting read with your sign-in (Key Vault Secrets User)
    settings    the agent's settings validate, as the app would read them
    storage     a probe entity written to and deleted from the lock table; the jobs queue read
    Registry    an access token from the Clearance STS with the connection file
    VMS         the configured VMS's cameras listed (only their number is printed)

A check that cannot run because an earlier one failed says so. Exit code 0 when every line is `ok`, else 7.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TextIO

from azure.core.exceptions import AzureError
from azure.data.tables import TableServiceClient
from azure.storage.queue import QueueClient, QueueServiceClient

from shared.http.retry import RetryingSender, RetryPolicy, Timeouts
from shared.http.session import pooled_session
from shared.ops import access
from shared.ops.access import ROLE_WRITE, Storage, storage_errors
from shared.ops.errors import Exit, OpsError
from shared.redact import scrub
from shared.registry.auth import TokenProvider
from shared.settings import AgentSettings, SettingsError
from shared.vms.settings import build_adapter

CHECK_RETRY = RetryPolicy(max_attempts=2, deadline=20.0)


class _Report:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.failed = False

    def line(self, ok: bool, what: str, text: str) -> None:
        self.failed |= not ok
        print(f"{'ok  ' if ok else 'FAIL'}  {what:<10}{scrub(text)}", file=self.out, flush=True)

    def run(self, what: str, check: Callable[[], str]) -> bool:
        try:
            self.line(True, what, check())
            return True
        except OpsError as exc:
            self.line(False, what, str(exc))
        except Exception as exc:  # noqa: BLE001 - every failure is one line of the report
            self.line(False, what, f"{type(exc).__name__}: {_first_line(exc)}")
        return False


def run_checks(
    values: dict[str, str],
    table_endpoint: str | None,
    table: str | None,
    out: TextIO,
    *,
    local: access.LocalStorage | None = None,
) -> int:
    report = _Report(out)
    resolved = dict(values)

    def key_vault() -> str:
        nonlocal resolved
        resolved, names = access.resolve_references(values)
        return f"{len(names)} reference(s) resolved: {', '.join(names)}" if names else "no Key Vault references"

    vault_ok = report.run("Key Vault", key_vault)
    storage = _storage(report, table_endpoint, resolved, local)
    settings: AgentSettings | None = None

    def read_settings() -> str:
        nonlocal settings
        given = dict(resolved)
        if storage is not None and storage.connection_string:
            given["AzureWebJobsStorage"] = storage.connection_string  # the Azurite `make agent` really uses
        try:
            settings = AgentSettings.from_env(given)
        except SettingsError as exc:
            raise OpsError(str(exc)) from None
        return f"valid (agent {settings.agent_id}, VMS {settings.vms.kind}, queue {settings.jobs_queue})"

    if vault_ok:
        report.run("settings", read_settings)
    else:
        report.line(False, "settings", "not checked: a Key Vault reference could not be read")
    lock_table = table or resolved.get("LOCKS_TABLE_NAME") or access.DEFAULT_TABLE
    if storage is not None:
        report.run("storage", lambda: _probe_storage(storage, lock_table, resolved))
    if settings is None:
        report.line(False, "Registry", "not checked: the settings are not valid")
        report.line(False, "VMS", "not checked: the settings are not valid")
        return Exit.CHECK_FAILED
    report.run("Registry", lambda: _registry_token(settings))
    report.run("VMS", lambda: _vms_cameras(settings, storage))
    return Exit.CHECK_FAILED if report.failed else Exit.OK


def _storage(
    report: _Report, table_endpoint: str | None, values: dict[str, str], local: access.LocalStorage | None
) -> Storage | None:
    try:
        return access.choose_storage(table_endpoint, values, local)
    except OpsError as exc:
        report.line(False, "storage", str(exc))
        return None


def _probe_storage(storage: Storage, table_name: str, values: dict[str, str]) -> str:
    table = access.open_table(storage, table_name)
    probe = {"PartitionKey": "ops-check", "RowKey": uuid.uuid4().hex}
    with storage_errors(table_name, role=ROLE_WRITE, doing="writing a probe to"):
        table.create_entity(probe)
        table.delete_entity(probe["PartitionKey"], probe["RowKey"])
    queue_name = values.get("JOBS_QUEUE_NAME", "clearance-jobs")
    queue = _queue(storage, queue_name)
    if queue is None:
        return f"probe written to and deleted from table {table_name} ({storage.described})"
    with storage_errors(queue_name, role="Storage Queue Data Reader", doing="reading queue"):
        try:
            waiting = queue.get_queue_properties().approximate_message_count
        except AzureError as exc:
            if "QueueNotFound" in str(exc):
                raise OpsError(f"no queue {queue_name} in this storage account", Exit.NOT_FOUND) from None
            raise
    return f"probe written to and deleted from table {table_name}; queue {queue_name}: {waiting} message(s)"


def _queue(storage: Storage, name: str) -> QueueClient | None:
    if storage.connection_string:
        return QueueClient.from_connection_string(storage.connection_string, name)
    if storage.queue_endpoint:
        return QueueServiceClient(storage.queue_endpoint, credential=access.operator_credential()).get_queue_client(
            name
        )
    return None


def _registry_token(settings: AgentSettings) -> str:
    sender = RetryingSender(pooled_session(1), CHECK_RETRY, Timeouts(), service="Registry")
    TokenProvider(settings.connection, sender).token()
    return f"access token for {settings.connection.client_id} from the Clearance STS"


def _vms_cameras(settings: AgentSettings, storage: Storage | None) -> str:
    token_table = None
    if storage is not None and settings.vms.kind in ("een", "verkada"):
        if storage.connection_string:
            service = TableServiceClient.from_connection_string(storage.connection_string)
        else:
            assert storage.table_endpoint is not None
            service = TableServiceClient(storage.table_endpoint, credential=access.operator_credential())
        token_table = service.get_table_client(settings.vms.een_token_table)
    adapter = build_adapter(settings.vms, token_table=token_table, retry=CHECK_RETRY, pool_size=1)
    count = sum(1 for _ in adapter.list_cameras())
    return f"{settings.vms.kind}: {count} camera(s)"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:200]
