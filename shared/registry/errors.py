"""Errors of the Clearance Registry boundary, grouped by what the agent does about them (`disposition`).

RegistryError
├── RegistryUnauthorized   credentials refused (401 after one re-auth, 403, STS said no)   misconfigured
├── RegistryBadRequest     400: our request was wrong; a bug or bad job data, never retried   permanent
├── NotOurs                the job is not, or no longer, ours: stop, never complete          lost
│   ├── JobGone            404/410 on a job: canceled, completed or deleted elsewhere
│   ├── LockConflict       409 on lock: another agent holds the job (the poller skips it)
│   └── LockTokenRefused           409 on renew/progress/complete/file calls
├── UploadRejected         422 on Complete*: the Registry could not verify the uploaded file  retry later
├── RegistryUnavailable    the Registry as a whole is out: the poller stops early            retry later
│   ├── RegistryRateLimited  429 past the retry budget (retry_after when known)
│   └── RegistryTransient    5xx, connection errors, timeouts past the retry budget
└── RegistryProtocolError  a response we cannot read, or a status the contract does not define  retry later

`error_for_status` is the one status-to-error mapping of the boundary; `RegistryFailures` hands it to
the authenticated sender (shared/http/sender.py).
"""

from __future__ import annotations

from typing import Any

import requests
from pydantic import ValidationError

from shared.failures import ClassifiedError, Disposition
from shared.http.retry import TransportFailure, parse_retry_after
from shared.http.sender import Call
from shared.redact import scrub
from shared.registry.contract import Operation, Problem

FILE_OPERATIONS = frozenset({Operation.COMPLETE_MEDIA, Operation.COMPLETE_DISCOVERY, Operation.COMPLETE_THUMBNAIL})


class RegistryError(ClassifiedError):
    """Base class. Messages carry the operation, job id and the server's detail, never credentials."""

    def __init__(
        self,
        message: str,
        *,
        operation: str | None = None,
        job_id: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.operation = operation
        self.job_id = job_id
        self.status = status


class RegistryUnauthorized(RegistryError):
    """The Registry or its STS refused the agent's credentials."""

    disposition = Disposition.MISCONFIGURED


class RegistryBadRequest(RegistryError):
    """The Registry refused the request as malformed (400)."""

    disposition = Disposition.PERMANENT


class NotOurs(RegistryError):
    """The job is not, or no longer, ours to work on."""

    disposition = Disposition.LOST


class JobGone(NotOurs):
    """The job no longer exists or is no longer available (404/410)."""


class LockConflict(NotOurs):
    """Another agent holds the lock on this job (409 on lock)."""


class LockTokenRefused(NotOurs):
    """Our lock expired or was taken over (409 on a call made under a lock)."""


class UploadRejected(RegistryError):
    """The Registry could not verify an uploaded file (422 on Complete*)."""


class RegistryUnavailable(RegistryError):
    """The Registry as a whole cannot be used now (outage, rate limit) once the retry budget ran out."""


class RegistryRateLimited(RegistryUnavailable):
    """Still rate limited (429) when the retry budget ran out."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class RegistryTransient(RegistryUnavailable):
    """Unavailable (5xx, connection errors, timeouts) when the retry budget ran out."""


class RegistryProtocolError(RegistryError):
    """The Registry answered something the contract does not allow (malformed body, unknown status)."""


def error_for_status(response: requests.Response, operation: Operation, job_id: str | None) -> RegistryError:
    """The error an HTTP status (300 or more) from the agent service means for `operation`."""
    status = response.status_code
    detail = _problem_detail(response)
    where = f"Registry {operation.value}" + (f" (job {job_id})" if job_id else "")
    message = f"{where}: HTTP {status}" + (f": {detail}" if detail else "")
    kwargs: dict[str, Any] = {"operation": operation.value, "job_id": job_id, "status": status}
    if status == 400:
        return RegistryBadRequest(message, **kwargs)
    if status in (401, 403):
        return RegistryUnauthorized(message, **kwargs)
    if status in (404, 410) and job_id is not None:
        return JobGone(message, **kwargs)
    if status == 409:
        return LockConflict(message, **kwargs) if operation is Operation.LOCK else LockTokenRefused(message, **kwargs)
    if status == 422 and operation in FILE_OPERATIONS:
        return UploadRejected(message, **kwargs)
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return RegistryRateLimited(message, retry_after=retry_after, **kwargs)
    if status >= 500:
        return RegistryTransient(message, **kwargs)
    return RegistryProtocolError(message, **kwargs)


def _problem_detail(response: requests.Response) -> str:
    """The server's explanation (problem+json `detail` or `title`), scrubbed and kept short."""
    try:
        problem = Problem.model_validate(response.json())
        text = problem.detail or problem.title or ""
    except (ValueError, ValidationError):
        text = ""
    return scrub(text)[:300]


class RegistryFailures:
    """The agent service's failures for the authenticated sender: `Call.subject` is the job id."""

    def unreachable(self, call: Call, failure: TransportFailure) -> RegistryError:
        return RegistryTransient(
            f"Registry {call.operation} failed: {failure.detail}", operation=call.operation, job_id=call.subject
        )

    def error_for(self, call: Call, response: requests.Response) -> RegistryError | None:
        if response.status_code < 300:
            return None
        return error_for_status(response, Operation(call.operation), call.subject)
