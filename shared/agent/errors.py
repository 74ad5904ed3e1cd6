"""Why an agent run stops early, and what the processor does about it (`disposition`).

AgentError
├── LockGone           our lock is gone (renewal failed, the Registry answered 409/410, or a newer
│                      lock replaced ours): stop at the next block boundary, commit and complete nothing   lost
├── TakenOver          another run owns this work item now (ours was thought dead): stop, touch nothing   taken over
├── JobCanceled        the job can never be done by this agent (bad parameters, unknown camera): cancel   cancel
└── ExportTimedOut     the VMS did not finish an export within EXPORT_TIMEOUT_SECONDS: the item fails     permanent

Our own configuration being wrong is said by the boundary that finds it (an upload host not allowed,
credentials refused): `Disposition.MISCONFIGURED`.
"""

from __future__ import annotations

from shared.failures import ClassifiedError, Disposition


class AgentError(ClassifiedError):
    """Base class of the agent's own reasons to stop."""


class LockGone(AgentError):
    """Our lock on the job is gone: stop, never commit or complete."""

    disposition = Disposition.LOST


class TakenOver(AgentError):
    """Another run has claimed the work item; this one must stop without writing anything."""

    disposition = Disposition.TAKEN_OVER


class JobCanceled(AgentError):
    """The job can never be done by this agent; the message is the cancel reason."""

    disposition = Disposition.CANCEL


class ExportTimedOut(AgentError):
    """The VMS export or clip of a work item was not ready within its deadline; waiting longer is not
    bounded by anything else, so the item fails with this reason (and its export is removed)."""

    disposition = Disposition.PERMANENT
