"""The Clearance Registry agent-service contract: every route, field name and wire model, in ONE module.

Genetec's Swagger for the agent service is not public; the routes and names below are the contract we
designed (see docs/protocol.md §3). When the official Swagger arrives, this file is the only
one that should need to change: the client builds requests and reads responses only through it.

Behaviour the agent relies on, beyond the routes [designed]:

- Every mutating call is idempotent for the same LockToken: repeating one that already succeeded
  answers success again (complete, cancel, release: 204; a Complete* of a file already completed: 204).
- Lock is idempotent for the same agent: locking a job that this AgentId already holds under a valid
  lock answers 200 with that current lock (the same LockToken and LockExpirationUtc; the expiry is not
  extended — renew does that). Another agent's lock still answers 409. So a lock call whose answer was
  lost, cut short or unreadable can be repeated to get the token back, and the job released (poll_jobs
  does exactly that rather than leave a job locked with no record).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field

from shared.wire import CaseInsensitiveModel, UtcDatetime, format_utc

# ---- Authentication (RFC 7523 JWT bearer) ---------------------------------------------------------

TOKEN_PATH = "/token"  # noqa: S105 - a URL path, not a secret
"""Appended to the connection file's SecurityTokenServiceBaseAddresses[0] (which ends in /connect)."""
JWT_BEARER_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_ALGORITHM = "RS512"
ASSERTION_LIFETIME_SECONDS = 300


def client_id(service_principal_id: str, tenant_id: str) -> str:
    return f"{service_principal_id}@{tenant_id}"


def token_request_form(client: str, assertion: str) -> dict[str, str]:
    return {"grant_type": JWT_BEARER_GRANT_TYPE, "client_id": client, "assertion": assertion}


class TokenResponse(CaseInsensitiveModel):
    access_token: str = Field(alias="access_token", min_length=1, repr=False)
    token_type: str = Field(default="Bearer", alias="token_type")
    expires_in: float = Field(default=3600, alias="expires_in", gt=0)


# ---- Routes ---------------------------------------------------------------------------------------

AGENT_SERVICE_SUFFIX = "/agentservice"
"""Default agent-service address: ApiBaseAddresses[0] + this (the connection file does not carry it)."""
TENANT_BASE = "/api/v1/tenant/{tenant_id}"


class Operation(StrEnum):
    LIST_JOBS = "list_jobs"
    LOCK = "lock"
    RENEW = "renew"
    PROGRESS = "progress"
    COMPLETE = "complete"
    CANCEL = "cancel"
    RELEASE = "release"
    INITIALIZE_UPLOAD = "initialize_upload"
    COMPLETE_MEDIA = "complete_media"
    COMPLETE_DISCOVERY = "complete_discovery"
    COMPLETE_THUMBNAIL = "complete_thumbnail"


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    """Relative to TENANT_BASE; placeholders are filled URL-quoted."""


ROUTES: dict[Operation, Route] = {
    Operation.LIST_JOBS: Route("GET", "/agents/{agent_id}/jobs"),
    Operation.LOCK: Route("POST", "/jobs/{job_id}/lock"),
    Operation.RENEW: Route("POST", "/jobs/{job_id}/lock/renew"),
    Operation.PROGRESS: Route("PUT", "/jobs/{job_id}/progress"),
    Operation.COMPLETE: Route("POST", "/jobs/{job_id}/complete"),
    Operation.CANCEL: Route("POST", "/jobs/{job_id}/cancel"),
    Operation.RELEASE: Route("POST", "/jobs/{job_id}/release"),
    Operation.INITIALIZE_UPLOAD: Route("POST", "/jobs/{job_id}/files"),
    Operation.COMPLETE_MEDIA: Route("POST", "/jobs/{job_id}/files/{file_id}/media"),
    Operation.COMPLETE_DISCOVERY: Route("POST", "/jobs/{job_id}/files/{file_id}/discovery"),
    Operation.COMPLETE_THUMBNAIL: Route("POST", "/jobs/{job_id}/files/{file_id}/thumbnail"),
}

LIST_JOBS_TYPES_QUERY = "types"

# ---- Vocabulary -----------------------------------------------------------------------------------

JobType = Literal["mediarequest", "discovery", "thumbnail"]
MEDIA_REQUEST, DISCOVERY, THUMBNAIL = "mediarequest", "discovery", "thumbnail"
"""The job types, as the Registry names them (each is one module of shared/agent/jobs/)."""
JOB_TYPES: tuple[str, ...] = (MEDIA_REQUEST, DISCOVERY, THUMBNAIL)
CompletionState = Literal["Completed", "PartiallyCompleted", "Failed"]
COMPLETION_STATES: tuple[str, ...] = ("Completed", "PartiallyCompleted", "Failed")
JOB_STATES: tuple[str, ...] = ("Available", "Locked", "Completed", "PartiallyCompleted", "Failed", "Canceled")

# ---- Request bodies -------------------------------------------------------------------------------


def lock_body(agent_id: str) -> dict[str, Any]:
    return {"AgentId": agent_id}


def renew_body(lock_token: str) -> dict[str, Any]:
    return {"LockToken": lock_token}


def progress_body(lock_token: str, progress: int, total: int) -> dict[str, Any]:
    return {"LockToken": lock_token, "TaskProgress": progress, "TaskTotal": total}


def complete_body(lock_token: str, state: str, message: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"LockToken": lock_token, "State": state}
    if message:
        body["Message"] = message
    return body


def cancel_body(lock_token: str, reason: str) -> dict[str, Any]:
    return {"LockToken": lock_token, "Reason": reason}


def release_body(lock_token: str) -> dict[str, Any]:
    return {"LockToken": lock_token}


def initialize_upload_body(lock_token: str, file_name: str, content_type: str) -> dict[str, Any]:
    return {"LockToken": lock_token, "FileName": file_name, "ContentType": content_type}


def complete_media_body(
    lock_token: str, camera_id: str, start: datetime, end: datetime, size: int, sha256: str
) -> dict[str, Any]:
    return {
        "LockToken": lock_token,
        "CameraId": camera_id,
        "StartTimeUtc": format_utc(start),
        "EndTimeUtc": format_utc(end),
        "Size": size,
        "Sha256": sha256,
    }


def complete_discovery_body(lock_token: str, device_count: int, size: int, sha256: str) -> dict[str, Any]:
    return {"LockToken": lock_token, "DeviceCount": device_count, "Size": size, "Sha256": sha256}


def complete_thumbnail_body(
    lock_token: str, camera_id: str, captured: datetime, size: int, sha256: str
) -> dict[str, Any]:
    return {
        "LockToken": lock_token,
        "CameraId": camera_id,
        "CapturedUtc": format_utc(captured),
        "Size": size,
        "Sha256": sha256,
    }


# ---- Response models ------------------------------------------------------------------------------


class Job(CaseInsensitiveModel):
    id: str = Field(alias="Id", min_length=1)
    type: str = Field(alias="Type", min_length=1)
    """Kept as a string: a job type this agent does not know is canceled, not a parse failure."""
    state: str | None = Field(default=None, alias="State")
    created_utc: UtcDatetime | None = Field(default=None, alias="CreatedUtc")
    parameters: dict[str, Any] = Field(default_factory=dict, alias="Parameters")


class CameraWindow(CaseInsensitiveModel):
    camera_id: str = Field(alias="CameraId", min_length=1)
    start_time_utc: UtcDatetime = Field(alias="StartTimeUtc")
    end_time_utc: UtcDatetime = Field(alias="EndTimeUtc")


class MediaRequestParameters(CaseInsensitiveModel):
    request_id: str | None = Field(default=None, alias="RequestId")
    cameras: list[CameraWindow] = Field(alias="Cameras", min_length=1)


class ThumbnailParameters(CaseInsensitiveModel):
    camera_ids: list[str] = Field(alias="CameraIds", min_length=1)


class DiscoveryParameters(CaseInsensitiveModel):
    pass


class Lock(CaseInsensitiveModel):
    job_id: str | None = Field(default=None, alias="JobId")
    lock_token: str = Field(alias="LockToken", min_length=1, repr=False)
    lock_expiration_utc: UtcDatetime = Field(alias="LockExpirationUtc")


class UploadTicket(CaseInsensitiveModel):
    file_id: str = Field(alias="FileId", min_length=1)
    json_web_key: dict[str, Any] = Field(alias="JsonWebKey")
    uri: str = Field(alias="Uri", min_length=1, repr=False)
    expiration_utc: UtcDatetime | None = Field(default=None, alias="ExpirationUtc")


class Problem(CaseInsensitiveModel):
    """RFC 7807 problem details (application/problem+json)."""

    type: str | None = Field(default=None, alias="type")
    title: str | None = Field(default=None, alias="title")
    status: int | None = Field(default=None, alias="status")
    detail: str | None = Field(default=None, alias="detail")
