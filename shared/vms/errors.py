"""Errors of the VMS boundary, one hierarchy for every adapter, grouped by what the agent does (`disposition`).

VmsError
├── VmsAuthError          credentials refused even after one refresh: fix configuration      misconfigured
│   └── VmsAuthRevoked    the OAuth grant is gone (EEN refresh token invalid): re-consent needed
├── CameraNotFound        the VMS does not know this camera: cancel the job                   cancel
├── NoFootage             nothing recorded for the camera and window                          report missing
├── VmsUnavailable        temporary: retry later                                              retry later
│   ├── DeviceUnavailable the camera is offline / cannot give a live image now
│   ├── VmsRateLimited    still 429 when the retry budget ran out (retry_after when known)
│   └── VmsTransient      5xx, timeouts, dropped connections past the budget
├── VmsInvalidRequest     the VMS refused our request as malformed (a bug or bad job data)    permanent
└── VmsVendorError        the vendor reported an error we cannot classify (e.g. Rhombus 200 + error)  permanent

Cancel and report-missing are decided where the whole job is seen: planning cancels a job naming an
unknown camera, a thumbnail item reports a camera without an image as missing. Elsewhere (a camera that
disappears while an item runs) the item is retried later.

`VendorFailures` is the one status-to-error mapping every adapter uses, with its vendor's style (which
operations mean "no footage" on a 404, hints for the operator, how the body explains an error).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from shared.failures import ClassifiedError, Disposition
from shared.http.retry import TransportFailure, parse_retry_after
from shared.http.sender import Call
from shared.redact import redact_url, scrub


class VmsError(ClassifiedError):
    """Base class; messages name the vendor, the operation and the camera, never credentials."""

    def __init__(self, message: str, *, vendor: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.vendor = vendor
        self.status = status


class VmsAuthError(VmsError):
    """The VMS refused our credentials."""

    disposition = Disposition.MISCONFIGURED


class VmsAuthRevoked(VmsAuthError):
    """The OAuth grant was revoked or lost: an administrator must consent again."""


class CameraNotFound(VmsError):
    """The camera id is unknown to the VMS."""

    disposition = Disposition.CANCEL


class NoFootage(VmsError):
    """The VMS has no recording for the requested camera and time."""

    disposition = Disposition.REPORT_MISSING


class VmsUnavailable(VmsError):
    """Temporary trouble on the VMS side; the same request may succeed later."""


class DeviceUnavailable(VmsUnavailable):
    """The device exists but cannot serve the request now (offline)."""


class VmsRateLimited(VmsUnavailable):
    """Still rate limited (429) when the retry budget ran out."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class VmsTransient(VmsUnavailable):
    """A temporary failure (5xx, timeouts, connection drops) after retries."""


class VmsInvalidRequest(VmsError):
    """The VMS refused the request as invalid (400)."""

    disposition = Disposition.PERMANENT


class VmsVendorError(VmsError):
    """An error the vendor reported in a form we cannot classify further."""

    disposition = Disposition.PERMANENT


def no_detail(response: requests.Response) -> str:
    return ""


def json_message(*names: str) -> Callable[[requests.Response], str]:
    """The vendor's explanation: the first of `names` present in a JSON error body, scrubbed and short."""

    def detail(response: requests.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return ""
        if not isinstance(body, dict):
            return ""
        text = next((str(body[name]) for name in names if body.get(name)), "")
        return scrub(text)[:200]

    return detail


@dataclass(frozen=True)
class VendorFailures:
    """A vendor's failures for the authenticated sender; `Call.subject` is the camera id, if any.

    HTTP 400 → VmsInvalidRequest; 401/403 → VmsAuthError; 404 → NoFootage on `footage_operations`, else
    CameraNotFound when the call is about a camera; 503 on `offline_operations` → DeviceUnavailable;
    429 → VmsRateLimited; other 5xx → VmsTransient; anything else from 400 up → VmsVendorError."""

    vendor: str
    label: str
    """How messages name the vendor: "EEN", "Rhombus", "Verkada"."""
    footage_operations: frozenset[str] = frozenset()
    offline_operations: frozenset[str] = frozenset()
    hints: Mapping[int, str] = field(default_factory=dict)
    """Appended to the message for a status: what the operator should check."""
    detail: Callable[[requests.Response], str] = no_detail
    show_url: bool = True
    """Name the (redacted) URL in messages."""
    not_found_without_camera: type[VmsError] = VmsVendorError
    """A 404 on a call about no particular camera (Rhombus: CameraNotFound, as for any of its 404s)."""
    default_retry_after: float | None = None
    """The wait a 429 without a usable Retry-After implies (Verkada's cooldown)."""

    def unreachable(self, call: Call, failure: TransportFailure) -> VmsTransient:
        return VmsTransient(f"{self.label} {call.operation}: {failure.detail}", vendor=self.vendor)

    def error_for(self, call: Call, response: requests.Response) -> VmsError | None:
        status = response.status_code
        if status < 400:
            return None
        where = f"{self.label} {call.operation}" + (f" for camera {call.subject}" if call.subject else "")
        detail = self.detail(response)
        text = f"{where}: HTTP {status}" + (f" {detail}" if detail else "")
        if self.show_url:
            text += f" ({redact_url(response.url or '')})"
        text += self.hints.get(status, "")
        kwargs: dict[str, Any] = {"vendor": self.vendor, "status": status}
        if status == 404:
            if call.operation in self.footage_operations:
                return NoFootage(text, **kwargs)
            return CameraNotFound(text, **kwargs) if call.subject else self.not_found_without_camera(text, **kwargs)
        if status == 503 and call.operation in self.offline_operations:
            return DeviceUnavailable(text, **kwargs)
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if self.default_retry_after is not None:
                retry_after = retry_after or self.default_retry_after
            return VmsRateLimited(text, retry_after=retry_after, **kwargs)
        if status in (401, 403):
            return VmsAuthError(text, **kwargs)
        if status == 400:
            return VmsInvalidRequest(text, **kwargs)
        if status >= 500:
            return VmsTransient(text, **kwargs)
        return VmsVendorError(text, **kwargs)
