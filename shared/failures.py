"""How each failure is handled, said once, by the error itself.

Every error the agent acts on belongs to one root per boundary — `RegistryError` (shared/registry/errors.py),
`VmsError` (shared/vms/errors.py), `UploadError` (shared/upload/errors.py), `AgentError`
(shared/agent/errors.py) — and each class states its `disposition`. The function app asks
`disposition_of(exc)` instead of keeping lists of classes; anything that is not one of ours (a bug, a
storage hiccup) is `RETRY_LATER`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class Disposition(StrEnum):
    RETRY_LATER = "retry later"
    """Temporary trouble (an outage, a rate limit past the retry budget): the same work may succeed later."""
    CANCEL = "cancel"
    """The job can never be done by this agent (bad parameters, an unknown camera): cancel it, with the reason."""
    LOST = "lost"
    """The job is not, or no longer, ours (lock lost or held elsewhere, job gone): stop, commit nothing."""
    MISCONFIGURED = "misconfigured"
    """Our own configuration is wrong (credentials refused, an upload host not allowed): release the job and
    name the setting; never cancel an investigator's request for our mistake."""
    PERMANENT = "permanent"
    """This piece of work can never succeed (a request the other side refuses as malformed): fail the item."""
    REPORT_MISSING = "report missing"
    """Nothing is there to deliver (no recording): report it as missing."""
    TAKEN_OVER = "taken over"
    """Another run owns the work item now: stop and write nothing."""


class ClassifiedError(Exception):
    """Base of every boundary's root error: the class says how its failures are handled."""

    disposition: ClassVar[Disposition] = Disposition.RETRY_LATER


def disposition_of(exc: BaseException) -> Disposition:
    """How `exc` is handled; an error that is not one of ours is treated as temporary."""
    return exc.disposition if isinstance(exc, ClassifiedError) else Disposition.RETRY_LATER
