"""Errors of the Clearance Registry boundary, grouped by what the agent does about them.

RegistryError
├── RegistryUnauthorized   credentials refused (401 after one re-auth, 403, STS said no): fix config
├── RegistryBadRequest     400: our request was wrong; a bug or bad job data, never retried
├── JobGone                404/410 on a job: canceled, completed or deleted elsewhere; drop it
├── LockConflict           409 on lock: another agent holds the job; skip it
├── LockLost               409 on renew/progress/complete/file calls: stop work, never complete
├── UploadRejected         422 on Complete*: the Registry could not verify the uploaded file
├── RegistryRateLimited    429 past the retry budget: retry later (retry_after when known)
├── RegistryTransient      5xx, connection errors, timeouts past the retry budget: retry later
└── RegistryProtocolError  a response we cannot read, or a status the contract does not define
"""

from __future__ import annotations


class RegistryError(Exception):
    """Base class. Messages carry the operation, job id and the server's detail, never credentials."""

    retryable = False

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


class RegistryBadRequest(RegistryError):
    """The Registry refused the request as malformed (400)."""


class JobGone(RegistryError):
    """The job no longer exists or is no longer available (404/410)."""


class LockConflict(RegistryError):
    """Another agent holds the lock on this job (409 on lock)."""


class LockLost(RegistryError):
    """Our lock expired or was taken over (409 on a call made under a lock)."""


class UploadRejected(RegistryError):
    """The Registry could not verify an uploaded file (422 on Complete*)."""


class RegistryRateLimited(RegistryError):
    """Still rate limited (429) when the retry budget ran out."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class RegistryTransient(RegistryError):
    """Unavailable (5xx, connection errors, timeouts) when the retry budget ran out."""

    retryable = True


class RegistryProtocolError(RegistryError):
    """The Registry answered something the contract does not allow (malformed body, unknown status)."""
