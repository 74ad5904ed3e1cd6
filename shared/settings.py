"""All app settings, read once from the environment into one typed object with clear errors.

In Azure the values come from the Function App's app settings (secrets as Key Vault references);
locally from `local.settings.json` or the local stack. Every setting is declared once below (the VMS's
in shared/vms/settings.py) and read by the one reader (shared/config.py): every problem is reported at
once, by name, never with its value.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationInfo, field_validator

from shared.config import (
    SettingProblem,
    Settings,
    SettingsError,
    boolean,
    host_list,
    integer,
    schedule,
    text,
)
from shared.registry.connection_file import ConnectionFile, ConnectionFileError, parse_connection_file
from shared.upload.target import AZURE_BLOB_HOST_PATTERNS
from shared.vms.settings import VmsSettings

__all__ = ["SETTINGS_READ", "AgentSettings", "SettingsError", "StorageSettings"]


class StorageSettings(Settings):
    """`AzureWebJobsStorage` as a connection string (local), or identity-based service URIs (Azure)."""

    connection_string: str | None = text("AzureWebJobsStorage", None, secret=True)
    queue_service_uri: str | None = text("AzureWebJobsStorage__queueServiceUri", None)
    table_service_uri: str | None = text("AzureWebJobsStorage__tableServiceUri", None)
    managed_identity_client_id: str | None = text("AzureWebJobsStorage__clientId", None)

    @classmethod
    def cross_checks(cls, given: Mapping[str, str]) -> list[tuple[str, str]]:
        identity = ("AzureWebJobsStorage__queueServiceUri", "AzureWebJobsStorage__tableServiceUri")
        if "AzureWebJobsStorage" in given or all(name in given for name in identity):
            return []
        return [
            (
                "AzureWebJobsStorage",
                "storage: set AzureWebJobsStorage (connection string) or AzureWebJobsStorage__queueServiceUri "
                "and AzureWebJobsStorage__tableServiceUri (managed identity)",
            )
        ]


class AgentSettings(Settings):
    connection_file_path: str = text("CLEARANCE_CONNECTION_FILE_PATH")
    connection: ConnectionFile = text("CLEARANCE_CONNECTION_FILE", None, secret=True, validate_default=True)
    agent_id: str = text("CLEARANCE_AGENT_ID", validate_default=True)
    agent_service_url: str | None = text("CLEARANCE_AGENT_SERVICE_URL", None)
    storage: StorageSettings
    vms: VmsSettings
    poll_schedule: str = schedule("POLL_SCHEDULE")
    renew_schedule: str = schedule("RENEW_SCHEDULE")
    jobs_queue: str = text("JOBS_QUEUE_NAME", "clearance-jobs")
    locks_table: str = text("LOCKS_TABLE_NAME", "clearancelocks")
    max_in_flight_jobs: int = integer("MAX_IN_FLIGHT_JOBS", 5, low=1, high=200)
    max_dequeue_count: int = integer("MAX_DEQUEUE_COUNT", 5, low=1, high=100)
    item_failure_limit: int = integer("ITEM_FAILURE_LIMIT", 5, low=1, high=100)
    lock_renew_margin_seconds: int = integer("LOCK_RENEW_MARGIN_SECONDS", 120, low=10, high=3600)
    max_job_age_minutes: int = integer("MAX_JOB_AGE_MINUTES", 180, low=5, high=7 * 24 * 60)
    progress_interval_seconds: float = integer("PROGRESS_INTERVAL_SECONDS", 5, low=1, high=600)
    export_timeout_seconds: int = integer("EXPORT_TIMEOUT_SECONDS", 1800, low=10, high=24 * 3600)
    export_wait_seconds: int = integer("EXPORT_WAIT_SECONDS", 20, low=1, high=600)
    retry_delay_seconds: int = integer("RETRY_DELAY_SECONDS", 15, low=1, high=600)
    release_limit: int = integer("RELEASE_LIMIT", 3, low=1, high=100)
    agent_pause_seconds: int = integer("AGENT_PAUSE_SECONDS", 300, low=5, high=24 * 3600)
    retention_days: int = integer("RETENTION_DAYS", 30, low=1, high=3650)
    max_segment_minutes: int = integer("MAX_SEGMENT_MINUTES", 15, low=1, high=60)
    upload_concurrency: int = integer("UPLOAD_CONCURRENCY", 4, low=1, high=32)
    upload_block_mib: int = integer("UPLOAD_BLOCK_MIB", 4, low=1, high=100)
    upload_allowed_hosts: tuple[str, ...] = host_list("UPLOAD_ALLOWED_HOSTS", AZURE_BLOB_HOST_PATTERNS)
    upload_allow_http_loopback: bool = boolean("UPLOAD_ALLOW_HTTP_LOOPBACK", False)

    @field_validator("connection", mode="before")
    @classmethod
    def _connection_file(cls, value: Any, info: ValidationInfo) -> Any:
        """The connection file's JSON (a Key Vault reference in Azure), or a file named by _PATH."""
        if isinstance(value, ConnectionFile):
            return value
        path = info.data.get("connection_file_path", "")
        try:
            if value:
                return parse_connection_file(value)
            if path:
                return parse_connection_file(Path(path).read_text(encoding="utf-8-sig"))
        except ConnectionFileError as exc:
            raise SettingProblem("CLEARANCE_CONNECTION_FILE", f"CLEARANCE_CONNECTION_FILE: {exc}") from None
        except OSError as exc:
            raise SettingProblem(
                "CLEARANCE_CONNECTION_FILE_PATH", f"CLEARANCE_CONNECTION_FILE_PATH cannot be read: {exc.strerror}"
            ) from None
        raise SettingProblem(
            "CLEARANCE_CONNECTION_FILE", "CLEARANCE_CONNECTION_FILE (the Clearance connection file's JSON) is not set"
        )

    @field_validator("agent_id", mode="after")
    @classmethod
    def _agent_id(cls, value: str, info: ValidationInfo) -> str:
        """The service principal's id unless the agent has an id of its own."""
        connection = info.data.get("connection")
        return value or (connection.service_principal_id if connection is not None else "")

    @field_validator("jobs_queue", mode="after")
    @classmethod
    def _poison_queue_fits(cls, value: str) -> str:
        if len(value) > 56:
            raise ValueError("must be at most 56 characters (its -poison queue must fit 63)")
        return value


SETTINGS_READ: tuple[str, ...] = AgentSettings.setting_names()
"""Every app setting the app reads (the deployment template must provide each one that has no default;
a test keeps the template and this list equal). The schedules are read by the Functions host too."""
