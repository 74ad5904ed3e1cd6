"""Every state, kind and outcome of the engine, as types. Each is a `StrEnum` whose values are the strings
stored in Table Storage (and written to logs) since the first version: nothing stored changes.

    RecordState   a job's lock record (partition `job`)          Queued → Processing → one final state
    PlanState     a lock's plan row (`plan-<generation>`)         Planned → Running → Completing → Done
    ItemState     a work item (`item-…`)                          Pending ⇄ Running → Delivered | Missing | Failed
    FileState     one file inside an item's `Files`               (new) → Committing → Committed → Delivered
    FailureKind   why a Failed item failed                        transient | permanent | timeout
    ItemKind      what one work item is (the item's `ItemKind`)   media | thumbnails | discovery
    FileKind      which Complete* a file needs (the file's `Kind`) media | thumbnail | discovery
    ItemOutcome   what one run of an item message did (logs and tests; never stored)

The Registry's own job types (`mediarequest`, `thumbnail`, `discovery`) are wire names: shared/registry/
contract.py; each is one job-type module (shared/agent/jobs/), which names its item kind and file kind.
Members of two enums may share a value (`ItemState.RUNNING` and `PlanState.UNDER_WAY` are both stored as
"Running"); their names say which thing they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class RecordState(StrEnum):
    """A job's lock record. States only move forward (RECORD_TRANSITIONS)."""

    QUEUED = "Queued"
    """Locked, recorded and its job message sent; not planned yet."""
    PROCESSING = "Processing"
    """Planned: its items are being run."""
    COMPLETED = "Completed"
    PARTIALLY_COMPLETED = "PartiallyCompleted"
    FAILED = "Failed"
    CANCELED = "Canceled"
    REFUSED = "Refused"
    """The Registry refused the job's completion (400); the job was canceled with the reason."""
    RELEASED = "Released"
    LOST = "Lost"
    """The Registry says the lock is no longer ours."""
    ABANDONED = "Abandoned"
    """Older than MAX_JOB_AGE_MINUTES: released by the renewal."""


FINAL_RECORD_STATES: frozenset[RecordState] = frozenset(RecordState) - {RecordState.QUEUED, RecordState.PROCESSING}

RECORD_TRANSITIONS: Mapping[RecordState, frozenset[RecordState]] = {
    RecordState.QUEUED: frozenset(RecordState),
    RecordState.PROCESSING: frozenset(RecordState) - {RecordState.QUEUED},
    **{final: frozenset({final}) for final in FINAL_RECORD_STATES},
}
"""Where a record in each state may go (a record written again in its own state is no move). A final state
is never left: a transition never overrides how a job ended."""


class PlanState(StrEnum):
    PLANNED = "Planned"
    """The plan row exists (its items are all written); the items may not all be enqueued yet."""
    UNDER_WAY = "Running"
    """Every item was enqueued; items are being run (stored as "Running")."""
    COMPLETING = "Completing"
    """The last item finished: the job is being completed (or released) at the Registry."""
    DONE = "Done"
    """The job was completed, canceled or released; `Outcome` says how."""


class ItemState(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    """Claimed by one run (its `Owner`), which keeps a heartbeat."""
    DELIVERED = "Delivered"
    MISSING = "Missing"
    FAILED = "Failed"


FINAL_ITEM_STATES: frozenset[ItemState] = frozenset({ItemState.DELIVERED, ItemState.MISSING, ItemState.FAILED})


class FileState(StrEnum):
    """How far one file of an item got; each is recorded before the next step can have an effect."""

    NEW = ""
    """Nothing recorded yet (at most uncommitted blocks exist)."""
    COMMITTING = "Committing"
    """FileId, size and SHA-256 recorded; the blob is being committed."""
    COMMITTED = "Committed"
    """The blob is committed; Complete* not yet acknowledged."""
    DELIVERED = "Delivered"
    MISSING = "Missing"
    """No file for this camera (a thumbnail the VMS could not give); the reason is in its facts."""


class FailureKind(StrEnum):
    TRANSIENT = "transient"
    """Given up after temporary trouble that outlasted the item's failure limit."""
    PERMANENT = "permanent"
    TIMEOUT = "timeout"
    """The VMS did not finish an export within EXPORT_TIMEOUT_SECONDS."""


class ItemKind(StrEnum):
    """What one work item is (stored as the item's `ItemKind`)."""

    MEDIA_SEGMENT = "media"
    """One camera's piece of recorded video (at most MAX_SEGMENT_MINUTES)."""
    THUMBNAIL_BATCH = "thumbnails"
    """Up to 20 cameras' snapshots."""
    DISCOVERY = "discovery"
    """The camera list."""


class FileKind(StrEnum):
    """Which Complete* call a delivered file needs (stored as the file's `Kind`)."""

    MEDIA = "media"
    THUMBNAIL = "thumbnail"
    DISCOVERY = "discovery"


class ItemOutcome(StrEnum):
    """What one run of an item message did (returned for logs and tests; never stored)."""

    DELIVERED = "Delivered"
    """The item is final with at least one file; the last item completes the job."""
    MISSING = "Missing"
    """The item is final with nothing to deliver (reported with the outcome)."""
    FAILED = "Failed"
    """A permanent problem, an export past its deadline, or the failure limit reached: final, reported."""
    WAITING = "Waiting"
    """The VMS is still exporting: back on the queue, its ticket kept."""
    RETRY_LATER = "RetryLater"
    """A transient failure: back on the queue after a backoff, the failure counted."""
    LOST = "Lost"
    """The lock is gone: stopped, VMS artefacts cleaned up, nothing committed or completed."""
    RELEASED = "Released"
    """Our own configuration is wrong: the whole job was released, the setting named, the agent paused."""
    DEFERRED = "Deferred"
    """Another run holds the item: looked at again later."""
    TAKEN_OVER = "TakenOver"
    """Another run took the item over: this one stopped without writing."""
    DUPLICATE = "Duplicate"
    """The item is final already."""
    STALE = "Stale"
    """The message belongs to a lock that has ended (or been replaced)."""
    UNKNOWN = "Unknown"
    """No such lock record or item."""


class MessageOutcome(StrEnum):
    """What one run of a job message (or a message the processor handles itself) did, besides the item
    outcomes of a one-item job's run (ItemOutcome) and the job states of a completion (RecordState)."""

    PLANNED = "Planned"
    """The job's items are written and enqueued (the plan Running)."""
    DUPLICATE = "Duplicate"
    """A plan stood already and nothing was left to do, or the message's lock has ended."""
    RESUMED = "Resumed"
    """A copy of a planning run that died: the item that run held was handed to an item message."""
    REFRESHED = "Refreshed"
    """A message delivered again (its run died or stalled) was swapped for a fresh copy."""
    RETRY_LATER = "RetryLater"
    """The message again, later, with one more try."""
    POISONED = "Poisoned"
    """To the poison queue (logged once); the job released."""
    UNKNOWN = "Unknown"
    """No lock record for the job: not locked by this agent."""
    LOST = "Lost"
    """The lock is gone (the Registry said so while planning)."""
    RELEASED = "Released"
    """Released at the Registry (the agent's own configuration, or planning kept failing)."""
