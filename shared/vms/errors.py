"""Errors of the VMS boundary, one hierarchy for every adapter, grouped by what the agent does.

VmsError
├── VmsAuthError          credentials refused even after one refresh: fix configuration
│   └── VmsAuthRevoked    the OAuth grant is gone (EEN refresh token invalid): re-consent needed
├── CameraNotFound        the VMS does not know this camera: cancel the job (permanent)
├── NoFootage             nothing recorded for the camera and window: report it as missing
├── DeviceUnavailable     the camera is offline / cannot give a live image now
├── VmsRateLimited        still 429 when the retry budget ran out (retry_after when known)
├── VmsTransient          5xx, timeouts, dropped connections past the budget: retry later
├── VmsInvalidRequest     the VMS refused our request as malformed (a bug or bad job data)
├── VmsExportFailed       an export/clip job failed on the VMS side
└── VmsVendorError        the vendor reported an error we cannot classify (e.g. Rhombus 200 + error)
"""

from __future__ import annotations


class VmsError(Exception):
    """Base class; messages name the vendor, the operation and the camera, never credentials."""

    retryable = False

    def __init__(self, message: str, *, vendor: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.vendor = vendor
        self.status = status


class VmsAuthError(VmsError):
    """The VMS refused our credentials."""


class VmsAuthRevoked(VmsAuthError):
    """The OAuth grant was revoked or lost: an administrator must consent again."""


class CameraNotFound(VmsError):
    """The camera id is unknown to the VMS."""


class NoFootage(VmsError):
    """The VMS has no recording for the requested camera and time."""


class DeviceUnavailable(VmsError):
    """The device exists but cannot serve the request now (offline)."""

    retryable = True


class VmsRateLimited(VmsError):
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class VmsTransient(VmsError):
    """A temporary failure (5xx, timeouts, connection drops) after retries."""

    retryable = True


class VmsInvalidRequest(VmsError):
    """The VMS refused the request as invalid (400)."""


class VmsExportFailed(VmsError):
    """The VMS could not produce the export or clip."""


class VmsVendorError(VmsError):
    """An error the vendor reported in a form we cannot classify further."""
