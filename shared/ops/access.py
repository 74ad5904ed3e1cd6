"""Where the ops tool reads from, and as whom: settings, storage, the operator's Azure sign-in, Key Vault.

The operator's own identity is used (Azure CLI, VS Code, environment; never a managed identity: settings
copied from the app name the app's identity, which does not exist on a laptop). Storage, first found:

1. `--table-endpoint URL`;
2. `AzureWebJobsStorage` in the settings file or the environment (`UseDevelopmentStorage=true` means
   the local Azurite `make agent` or `make stack` runs);
3. `AzureWebJobsStorage__tableServiceUri` (the app's identity-based settings, used with *your* sign-in);
4. on a development machine, the storage emulator its own tooling finds (`LocalStorage`, given by the
   caller: the repository's `make ops` passes the Azurite of a running `make agent` or `make stack`;
   `python -m shared.ops` has none — the deployed package knows nothing of a local stack).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import requests
from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from azure.data.tables import TableClient, TableServiceClient

from shared.ops.errors import Exit, OpsError

DEFAULT_TABLE = "clearancelocks"
LOCAL_STORAGE = "usedevelopmentstorage=true"
_PREFIXES = ("AzureWebJobsStorage", "CLEARANCE_", "LOCKS_", "JOBS_", "EEN_", "RHOMBUS_", "VERKADA_", "VMS_")
_REFERENCE = re.compile(r"^@Microsoft\.KeyVault\((?P<body>.*)\)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Storage:
    """How to reach the agent's storage, and a one-line description for the operator."""

    described: str
    connection_string: str | None = None
    table_endpoint: str | None = None
    queue_endpoint: str | None = None


@dataclass(frozen=True)
class LocalStorage:
    """A development machine's own storage emulator, found by its tooling (never by the deployed package)."""

    find: Callable[[], Storage | None]
    start_hint: str
    """How to start one, for the error when none is running."""


def read_values(settings: Path | None) -> dict[str, str]:
    """The agent's settings from the environment, overlaid with a local.settings.json's `Values`."""
    values = {k: v for k, v in os.environ.items() if k.startswith(_PREFIXES)}
    if settings is not None:
        try:
            document = json.loads(settings.read_text(encoding="utf-8-sig"))
            values.update({str(k): str(v) for k, v in document["Values"].items()})
        except (OSError, ValueError, KeyError, AttributeError) as exc:
            raise OpsError(f"cannot read the Values of {settings} ({type(exc).__name__})") from None
    return values


def choose_storage(table_endpoint: str | None, values: Mapping[str, str], local: LocalStorage | None = None) -> Storage:
    if table_endpoint:
        return Storage(f"{table_endpoint} (signed in as you)", table_endpoint=table_endpoint)
    connection = values.get("AzureWebJobsStorage", "").strip()
    if connection and connection.lower() != LOCAL_STORAGE:
        return Storage("the storage account of AzureWebJobsStorage", connection_string=connection)
    if not connection and values.get("AzureWebJobsStorage__tableServiceUri"):
        uri = values["AzureWebJobsStorage__tableServiceUri"]
        return Storage(
            f"{uri} (signed in as you, not as the app's managed identity)",
            table_endpoint=uri,
            queue_endpoint=values.get("AzureWebJobsStorage__queueServiceUri"),
        )
    found = local.find() if local is not None else None
    if found is not None:
        return found
    start = f"{local.start_hint}, or " if local is not None else ""
    if connection:
        raise OpsError(
            f"AzureWebJobsStorage=UseDevelopmentStorage=true, but no local Azurite is running: {start}give "
            "--table-endpoint",
            Exit.UNREACHABLE,
        )
    raise OpsError(
        "no storage given: use --settings FILE, --table-endpoint URL, set AzureWebJobsStorage"
        + (f", or {local.start_hint}" if local is not None else "")
    )


@cache
def operator_credential() -> TokenCredential:
    """The operator's sign-in: Azure CLI, VS Code, environment… never a managed identity."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(exclude_managed_identity_credential=True)


def open_table(storage: Storage, name: str) -> TableClient:
    """The lock table (a module-level function: tests swap it for a client with a reader's rights)."""
    # retry_total: an operator waits for an answer, a few seconds rather than the SDK's default retries
    if storage.connection_string:
        service = TableServiceClient.from_connection_string(storage.connection_string, retry_total=2)
    else:
        assert storage.table_endpoint is not None
        service = TableServiceClient(storage.table_endpoint, credential=operator_credential(), retry_total=2)
    return service.get_table_client(name)


ROLE_READ = "Storage Table Data Reader"
ROLE_WRITE = "Storage Table Data Contributor"


@contextlib.contextmanager
def storage_errors(table: str, *, role: str = ROLE_READ, doing: str = "reading") -> Iterator[None]:
    """Storage failures as one line each, with the exit code that says which kind."""
    try:
        yield
    except ResourceNotFoundError as exc:
        if getattr(exc, "error_code", None) == "TableNotFound" or "TableNotFound" in str(exc):
            raise OpsError(
                f"no table {table} in this storage account (check --table / LOCKS_TABLE_NAME)", Exit.NOT_FOUND
            ) from None
        raise OpsError(f"storage answered 404 while {doing} table {table}", Exit.NOT_FOUND) from None
    except ClientAuthenticationError as exc:
        if isinstance(exc, HttpResponseError) and exc.status_code in (401, 403):
            raise _forbidden(exc, table, role, doing) from None
        raise OpsError(
            f"could not sign in to Azure ({type(exc).__name__}): run `az login` (or give a connection string)",
            Exit.SIGN_IN,
        ) from None
    except HttpResponseError as exc:
        if exc.status_code in (401, 403):
            raise _forbidden(exc, table, role, doing) from None
        code = getattr(exc, "error_code", None) or exc.reason
        raise OpsError(
            f"storage answered {exc.status_code} ({code}) while {doing} table {table}", Exit.UNREACHABLE
        ) from None
    except ServiceRequestError as exc:
        raise OpsError(f"storage cannot be reached ({type(exc).__name__}) while {doing}", Exit.UNREACHABLE) from None


def _forbidden(exc: HttpResponseError, table: str, role: str, doing: str) -> OpsError:
    code = getattr(exc, "error_code", None) or exc.reason or "denied"
    return OpsError(
        f"storage refused {doing} table {table} ({exc.status_code} {code}): your account needs {role} on the "
        "storage account (docs/deployment.md, Operating it)",
        Exit.FORBIDDEN,
    )


# ---- Key Vault references --------------------------------------------------------------------------------


def key_vault_reference(value: str) -> tuple[str, str, str] | None:
    """`@Microsoft.KeyVault(...)` → (vault URL, secret name, version or ""); None for a plain value.

    Both documented forms: `SecretUri=https://<vault>.vault.azure.net/secrets/<name>[/<version>]` and
    `VaultName=<vault>;SecretName=<name>[;SecretVersion=<version>]`."""
    match = _REFERENCE.match(value.strip())
    if match is None:
        return None
    parts = {k.strip().lower(): v.strip() for k, _, v in (p.partition("=") for p in match["body"].split(";"))}
    if "secreturi" in parts:
        uri = re.match(r"^(https://[^/]+)/secrets/([^/?]+)(?:/([^/?]+))?/?$", parts["secreturi"])
        if uri is None:
            raise OpsError("a Key Vault reference has a SecretUri that is not https://<vault>/secrets/<name>")
        return uri[1], uri[2], uri[3] or ""
    if parts.get("vaultname") and parts.get("secretname"):
        return f"https://{parts['vaultname']}.vault.azure.net", parts["secretname"], parts.get("secretversion", "")
    raise OpsError("a Key Vault reference names neither SecretUri nor VaultName and SecretName")


def resolve_secret(setting: str, reference: tuple[str, str, str], *, timeout: float = 15.0) -> str:
    """The secret's value, read with the operator's sign-in (needs Key Vault Secrets User on the vault)."""
    vault, name, version = reference
    try:
        token = operator_credential().get_token("https://vault.azure.net/.default").token
    except ClientAuthenticationError as exc:
        raise OpsError(
            f"could not sign in to Azure for Key Vault ({type(exc).__name__}): run `az login`", Exit.SIGN_IN
        ) from None
    url = f"{vault}/secrets/{name}/{version}".rstrip("/") + "?api-version=7.4"
    try:
        response = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout)
    except requests.RequestException as exc:
        raise OpsError(
            f"{setting}: Key Vault {vault} cannot be reached ({type(exc).__name__})", Exit.UNREACHABLE
        ) from None
    if response.status_code in (401, 403):
        raise OpsError(
            f"{setting}: Key Vault refused to read secret {name} ({response.status_code}): your account needs Key "
            f"Vault Secrets User on {vault}",
            Exit.FORBIDDEN,
        )
    if response.status_code == 404:
        raise OpsError(f"{setting}: no secret {name} in {vault}", Exit.NOT_FOUND)
    if not response.ok:
        raise OpsError(f"{setting}: Key Vault answered {response.status_code} for {name}", Exit.UNREACHABLE)
    try:
        return str(response.json()["value"])
    except (ValueError, KeyError, TypeError):
        raise OpsError(f"{setting}: Key Vault's answer for {name} has no value", Exit.UNREACHABLE) from None


def resolve_references(values: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Every Key Vault reference replaced by its secret; and the names of the settings resolved."""
    resolved, names = dict(values), []
    for setting, value in values.items():
        reference = key_vault_reference(value)
        if reference is not None:
            resolved[setting] = resolve_secret(setting, reference)
            names.append(setting)
    return resolved, names
