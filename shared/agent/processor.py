"""process_job: run one job from its queue message, exactly once, and end it in the right state.

Failure policy (what an operator sees in the lock record and the logs):
- lock lost (renewal failed, or any Registry call answered 409/410): stop at once, clean up VMS
  artefacts, never complete → record `Lost`;
- permanent (malformed parameters, camera unknown to the VMS, unsupported type, unusable key or upload
  target): cancel the job with the reason → `Canceled`;
- transient (VMS or Registry outage, rate limits past the deadline, storage errors): raise so the host
  retries the message; on the final delivery release the job instead → `Released`, so no job sits in
  the poison queue with its lock still held.
"""

from __future__ import annotations

import contextlib
import logging

from shared.agent.handlers import JobCanceled, parameters_for, run_discovery, run_media, run_thumbnails
from shared.agent.messages import JobMessage, MalformedMessage, decode_job
from shared.agent.records import PROCESSING, StaleRecord, stale_heartbeat, utc_now
from shared.agent.run import HEARTBEAT_STALE_AFTER, JobRun, LockLostError, Services
from shared.redact import scrub
from shared.registry.contract import MediaRequestParameters, ThumbnailParameters
from shared.registry.errors import JobGone, LockLost, RegistryBadRequest, RegistryError
from shared.upload.errors import RecipientKeyRejected, UploadLimitExceeded, UploadTargetRefused
from shared.vms.errors import CameraNotFound, VmsInvalidRequest

log = logging.getLogger(__name__)

PERMANENT = (
    JobCanceled,
    CameraNotFound,
    VmsInvalidRequest,
    RecipientKeyRejected,
    UploadTargetRefused,
    UploadLimitExceeded,
    RegistryBadRequest,
)
LOST = (LockLostError, LockLost, JobGone)


class RetryLater(Exception):
    """Raised to the host so it redelivers the message (a transient failure, not the final delivery)."""


def process_message(body: bytes, *, dequeue_count: int, message_id: str, services: Services) -> str:
    """Returns what happened (for logs and tests): a final state, or 'Duplicate'/'Unknown'.

    The record's owner is the queue message id: a redelivery of the same message takes over its own
    earlier run (which failed or died), while a second message for the same job is a duplicate."""
    try:
        message = decode_job(body)
    except MalformedMessage as exc:
        log.error("process_job: malformed message (dequeue %d): %s", dequeue_count, exc)
        raise
    context = {"job_id": message.job_id, "job_type": message.job_type, "attempt": dequeue_count}
    job_log = logging.LoggerAdapter(log, context)
    run = _claim(message, dequeue_count, message_id, services, job_log)
    if isinstance(run, str):
        return run
    try:
        return _execute(run, message)
    except LOST as exc:
        job_log.warning("Lock lost (%s); stopping without completing", exc)
        services.records.transition(message.job_id, "Lost", last_error=str(exc)[:500], owner="")
        return "Lost"
    except PERMANENT as exc:
        return _cancel(run, str(exc), job_log)
    except Exception as exc:  # noqa: BLE001 - anything else is treated as transient: retried, then released
        return _transient(run, exc, dequeue_count, services, job_log)


def _claim(message: JobMessage, dequeue_count: int, message_id: str, services: Services, job_log):
    """The JobRun to execute, or a string saying why there is nothing to do."""
    records = services.records
    for _ in range(3):
        record = records.get(message.job_id)
        if record is None:
            job_log.warning("No lock record for this job: not locked by this agent (or cleaned up); ignoring")
            return "Unknown"
        if record.terminal:
            job_log.info("Job already %s; duplicate message acknowledged", record.state)
            return "Duplicate"
        live_elsewhere = (
            record.state == PROCESSING
            and record.owner not in ("", message_id)
            and not stale_heartbeat(record, utc_now(), HEARTBEAT_STALE_AFTER)
        )
        if live_elsewhere and dequeue_count == 1:
            job_log.info("Job is being processed by a live run (%s); duplicate message acknowledged", record.owner)
            return "Duplicate"
        try:
            claimed = records.save(
                record.moved_to(PROCESSING, owner=message_id, attempts=record.attempts + 1, heartbeat=utc_now())
            )
        except StaleRecord:
            continue
        job_log.info("Processing (attempt %d, delivery %d)", claimed.attempts, dequeue_count)
        return JobRun(services, claimed, message.parameters, job_log)
    return "Duplicate"


def _execute(run: JobRun, message: JobMessage) -> str:
    parameters = parameters_for(message.job_type, message.parameters)
    if isinstance(parameters, MediaRequestParameters):
        outcome, nothing = run_media(run, parameters), "Video unavailable"
    elif isinstance(parameters, ThumbnailParameters):
        outcome, nothing = run_thumbnails(run, parameters), "No image available"
    else:
        outcome, nothing = run_discovery(run), "Discovery failed"
    state, text = outcome.completion(nothing)
    run.check_lock(force=True)
    run.report_progress(final=True)
    run.services.registry.complete(run.job_id, run.lock_token, state, text)
    run.services.records.transition(run.job_id, state, owner="", last_error=text or "")
    run.log.info("Completed the job as %s%s", state, f": {text}" if text else "")
    return state


def _cancel(run: JobRun, reason: str, job_log) -> str:
    job_log.warning("Canceling the job: %s", reason)
    try:
        run.services.registry.cancel(run.job_id, run.lock_token, reason[:1000])
    except LOST:
        run.services.records.transition(run.job_id, "Lost", last_error=reason[:500], owner="")
        return "Lost"
    run.services.records.transition(run.job_id, "Canceled", last_error=reason[:1000], owner="")
    return "Canceled"


def _transient(run: JobRun, exc: Exception, dequeue_count: int, services: Services, job_log) -> str:
    reason = scrub(f"{type(exc).__name__}: {exc}")[:500]
    if dequeue_count < services.max_dequeue_count:
        job_log.warning(
            "Transient failure on delivery %d/%d, the host will retry: %s",
            dequeue_count,
            services.max_dequeue_count,
            reason,
        )
        with contextlib.suppress(StaleRecord):
            services.records.save(run.record.moved_to(PROCESSING, owner="", last_error=reason))
        raise RetryLater(reason) from exc
    job_log.error("Final delivery failed (%s); releasing the job so it can be picked up again", reason)
    try:
        services.registry.release(run.job_id, run.lock_token)
    except RegistryError as release_error:
        job_log.error("Releasing failed too (%s); the lock will expire on its own", release_error)
    services.records.transition(run.job_id, "Released", last_error=reason, owner="")
    return "Released"
