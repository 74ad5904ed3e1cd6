"""All app settings, read once from the environment into one typed object with clear errors.

In Azure the values come from the Function App's app settings (secrets as Key Vault references);
locally from `local.settings.json` or the local stack. A missing or malformed setting is reported by
name, never with its value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.registry.connection_file import ConnectionFile, ConnectionFileError, parse_connection_file
from shared.upload.target import AZURE_BLOB_HOST_PATTERNS
from shared.vms.settings import VmsConfigError, VmsSettings

KEY_VAULT_PREFIX = "@microsoft.keyvault("


class SettingsError(ValueError):
    """One or more settings are missing or malformed; the message lists every problem."""


@dataclass(frozen=True)
class StorageSettings:
    """`AzureWebJobsStorage` as a connection string (local), or identity-based service URIs (Azure)."""

    connection_string: str | None = field(default=None, repr=False)
    queue_service_uri: str | None = None
    table_service_uri: str | None = None
    managed_identity_client_id: str | None = None


@dataclass(frozen=True)
class AgentSettings:
    connection: ConnectionFile = field(repr=False)
    agent_id: str
    agent_service_url: str | None
    storage: StorageSettings
    vms: VmsSettings
    jobs_queue: str = "clearance-jobs"
    locks_table: str = "clearancelocks"
    max_in_flight_jobs: int = 5
    max_dequeue_count: int = 5
    lock_renew_margin_seconds: int = 120
    max_job_age_minutes: int = 180
    progress_interval_seconds: float = 5.0
    export_timeout_seconds: int = 1800
    max_segment_minutes: int = 15
    upload_concurrency: int = 4
    upload_block_mib: int = 4
    upload_allowed_hosts: tuple[str, ...] = AZURE_BLOB_HOST_PATTERNS
    upload_allow_http_loopback: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AgentSettings:
        env = os.environ if env is None else env
        reader = _Reader(env)
        connection = reader.connection_file()
        storage = reader.storage()
        try:
            vms = VmsSettings.from_env(env)
        except VmsConfigError as exc:
            reader.problems.append(str(exc))
            vms = None
        settings = dict(
            agent_service_url=reader.text("CLEARANCE_AGENT_SERVICE_URL") or None,
            jobs_queue=reader.text("JOBS_QUEUE_NAME", "clearance-jobs"),
            locks_table=reader.text("LOCKS_TABLE_NAME", "clearancelocks"),
            max_in_flight_jobs=reader.integer("MAX_IN_FLIGHT_JOBS", 5, low=1, high=200),
            max_dequeue_count=reader.integer("MAX_DEQUEUE_COUNT", 5, low=1, high=100),
            lock_renew_margin_seconds=reader.integer("LOCK_RENEW_MARGIN_SECONDS", 120, low=10, high=3600),
            max_job_age_minutes=reader.integer("MAX_JOB_AGE_MINUTES", 180, low=5, high=7 * 24 * 60),
            progress_interval_seconds=float(reader.integer("PROGRESS_INTERVAL_SECONDS", 5, low=1, high=600)),
            export_timeout_seconds=reader.integer("EXPORT_TIMEOUT_SECONDS", 1800, low=10, high=24 * 3600),
            max_segment_minutes=reader.integer("MAX_SEGMENT_MINUTES", 15, low=1, high=60),
            upload_concurrency=reader.integer("UPLOAD_CONCURRENCY", 4, low=1, high=32),
            upload_block_mib=reader.integer("UPLOAD_BLOCK_MIB", 4, low=1, high=100),
            upload_allowed_hosts=reader.host_list("UPLOAD_ALLOWED_HOSTS", AZURE_BLOB_HOST_PATTERNS),
            upload_allow_http_loopback=reader.boolean("UPLOAD_ALLOW_HTTP_LOOPBACK", False),
        )
        for schedule in ("POLL_SCHEDULE", "RENEW_SCHEDULE"):
            reader.schedule(schedule)
        if len(settings["jobs_queue"]) > 56:
            reader.problems.append("JOBS_QUEUE_NAME must be at most 56 characters (its -poison queue must fit 63)")
        if reader.problems or connection is None or vms is None:
            raise SettingsError("invalid app settings: " + "; ".join(reader.problems))
        agent_id = reader.text("CLEARANCE_AGENT_ID") or connection.service_principal_id
        return cls(connection=connection, agent_id=agent_id, storage=storage, vms=vms, **settings)


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def text(self, name: str, default: str = "") -> str:
        value = (self.env.get(name) or "").strip()
        if value.lower().startswith(KEY_VAULT_PREFIX):
            self.problems.append(
                f"{name} holds an unresolved Key Vault reference (check the secret and the app identity's "
                "'Key Vault Secrets User' role)"
            )
            return default
        return value or default

    def integer(self, name: str, default: int, *, low: int, high: int) -> int:
        raw = self.text(name)
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.problems.append(f"{name} must be a whole number")
            return default
        if not low <= value <= high:
            self.problems.append(f"{name} must be between {low} and {high}")
            return default
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.text(name).lower()
        if not raw:
            return default
        if raw in ("1", "true", "yes"):
            return True
        if raw in ("0", "false", "no"):
            return False
        self.problems.append(f"{name} must be true or false")
        return default

    def schedule(self, name: str) -> None:
        """The Functions host reads the timers' schedules; a wrong one is caught here, named, before it runs."""
        raw = self.text(name)
        if raw and len(raw.split()) != 6:
            self.problems.append(
                f"{name} must be a 6-field NCRONTAB expression with seconds first, e.g. '0 */1 * * * *' "
                f"(got {len(raw.split())} fields)"
            )

    def host_list(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        raw = self.text(name)
        return tuple(h.strip() for h in raw.split(",") if h.strip()) if raw else default

    def connection_file(self) -> ConnectionFile | None:
        text = self.env.get("CLEARANCE_CONNECTION_FILE", "")
        path = self.text("CLEARANCE_CONNECTION_FILE_PATH")
        try:
            if text.strip():
                return parse_connection_file(text)
            if path:
                with open(path, encoding="utf-8-sig") as handle:
                    return parse_connection_file(handle.read())
        except ConnectionFileError as exc:
            self.problems.append(f"CLEARANCE_CONNECTION_FILE: {exc}")
            return None
        except OSError as exc:
            self.problems.append(f"CLEARANCE_CONNECTION_FILE_PATH cannot be read: {exc.strerror}")
            return None
        self.problems.append("CLEARANCE_CONNECTION_FILE (the Clearance connection file's JSON) is not set")
        return None

    def storage(self) -> StorageSettings:
        connection_string = self.text("AzureWebJobsStorage")
        if connection_string:
            return StorageSettings(connection_string=connection_string)
        queue_uri = self.text("AzureWebJobsStorage__queueServiceUri")
        table_uri = self.text("AzureWebJobsStorage__tableServiceUri")
        if not (queue_uri and table_uri):
            self.problems.append(
                "storage: set AzureWebJobsStorage (connection string) or AzureWebJobsStorage__queueServiceUri "
                "and AzureWebJobsStorage__tableServiceUri (managed identity)"
            )
        return StorageSettings(
            queue_service_uri=queue_uri or None,
            table_service_uri=table_uri or None,
            managed_identity_client_id=self.text("AzureWebJobsStorage__clientId") or None,
        )


# Every app setting the app reads (the deployment template must provide each one that has no default;
# a test keeps this list equal to what the code reads). The schedules are read by the Functions host.
SETTINGS_READ: tuple[str, ...] = (
    "AzureWebJobsStorage", "AzureWebJobsStorage__clientId", "AzureWebJobsStorage__queueServiceUri",
    "AzureWebJobsStorage__tableServiceUri", "POLL_SCHEDULE", "RENEW_SCHEDULE",
    "CLEARANCE_CONNECTION_FILE", "CLEARANCE_CONNECTION_FILE_PATH", "CLEARANCE_AGENT_ID", "CLEARANCE_AGENT_SERVICE_URL",
    "JOBS_QUEUE_NAME", "LOCKS_TABLE_NAME", "MAX_IN_FLIGHT_JOBS", "MAX_DEQUEUE_COUNT", "LOCK_RENEW_MARGIN_SECONDS",
    "MAX_JOB_AGE_MINUTES", "PROGRESS_INTERVAL_SECONDS", "EXPORT_TIMEOUT_SECONDS", "MAX_SEGMENT_MINUTES",
    "UPLOAD_CONCURRENCY", "UPLOAD_BLOCK_MIB", "UPLOAD_ALLOWED_HOSTS", "UPLOAD_ALLOW_HTTP_LOOPBACK",
    "VMS_KIND", "EEN_CLIENT_ID", "EEN_CLIENT_SECRET", "EEN_REFRESH_TOKEN", "EEN_AUTH_URL", "EEN_API_URL",
    "EEN_VIDEO_ROUTE", "EEN_TOKEN_TABLE", "RHOMBUS_API_KEY", "RHOMBUS_REGION", "RHOMBUS_API_URL", "RHOMBUS_MEDIA_URL",
    "VERKADA_API_KEY", "VERKADA_ORG_ID", "VERKADA_REGION", "VERKADA_API_URL",
)  # fmt: skip
