"""Why an agent run stops early, and what the processor does about it.

LockLostError    our lock is gone (renewal failed, the Registry answered 409/410, or a newer lock
                 replaced ours): stop at the next block boundary, commit and complete nothing
TakenOver        another run owns this work item now (ours was thought dead): stop, touch nothing
JobCanceled      the job can never be done by this agent (bad parameters, unknown camera): cancel
AgentMisconfigured   our own configuration is wrong (an upload host not allowed, credentials refused):
                 release the job for later and tell the operator which setting — never cancel an
                 investigator's request for our own mistake
"""

from __future__ import annotations


class LockLostError(Exception):
    """Our lock on the job is gone: stop, never commit or complete."""


class TakenOver(Exception):
    """Another run has claimed the work item; this one must stop without writing anything."""


class JobCanceled(Exception):
    """The job can never be done by this agent; the message is the cancel reason."""


class AgentMisconfigured(Exception):
    """A setting of ours is wrong; the message names it."""
