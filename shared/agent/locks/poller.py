"""poll_jobs: list available jobs, choose within capacity, lock, record, enqueue.

Choice: supported types only (the list is filtered by type at the Registry); oldest first; and a
share of the capacity — a quarter, at least one slot — reserved for small jobs (thumbnail, discovery)
so they are never starved behind long media requests. An idle poll costs one Registry call and no
storage writes; a poll at full capacity costs no Registry call at all. Capacity is counted on the
active index (records.py), so a poll costs the same however long the history.

Taking a job: lock → lock record (with the job's history of earlier locks, and the offered job's
parameters when they are small; messages carry ids only) → a row of its own for larger parameters → job
message. A job this agent has already released
`RELEASE_LIMIT` times for reasons of its own, or older than `MAX_JOB_AGE_MINUTES` across its locks, is
canceled with the reason right after it is locked, instead of being worked (and released) again; a job
whose parameters cannot be stored is canceled too. Nothing loops.

While the agent is paused (its own configuration is wrong: pause.py) it locks nothing; once the pause
is over it probes the VMS, and either resumes or pauses again.

No job is left locked without a record and a queue message. Any failure once a lock may have been
taken — an answer to the lock call that cannot be read, a record that cannot be written, a message
that cannot be enqueued — gives that job up in the same poll: it is released, the reason goes to its
lock record (where one exists) and to one log line, and the poll goes on with the other jobs. When the
lock answer itself is unusable the agent has no lock token; it asks again, relying on the contract
that locking a job this agent already holds returns its current lock (shared/registry/contract.py),
and releases what it gets. Only failures of the Registry as a whole stop a poll early: refused
credentials (raised) and an outage or rate limit past the retry budget (the rest waits for the next poll).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from shared.agent.jobs import catalog
from shared.agent.locks.pause import PauseState
from shared.agent.locks.records import INLINE_PARAMETERS, LockRecord, count_in_flight, utc_now
from shared.agent.states import RecordState
from shared.agent.wiring.services import Services
from shared.agent.work.ending import cancel_job, end_job, reason_to_end
from shared.agent.work.ledger import JobTooLarge, OfferedJob, generation_of
from shared.agent.work.messages import encode_job
from shared.failures import Disposition, disposition_of
from shared.redact import scrub
from shared.registry.client import RegistryClient
from shared.registry.contract import Job
from shared.registry.errors import (
    LockTokenRefused,
    NotOurs,
    RegistryBadRequest,
    RegistryUnauthorized,
    RegistryUnavailable,
)
from shared.storage import send_message
from shared.telemetry import job_context
from shared.telemetry.tracing import job_trace

log = logging.getLogger(__name__)


@dataclass
class PollResult:
    capacity: int = 0
    offered: int = 0
    locked: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    canceled: list[str] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)
    """Job id → why it was given up, for every job released (or that could not be released) in this poll."""
    paused: str = ""
    """Why the agent is paused (nothing was locked), if it is."""


def choose(jobs: list[Job], capacity: int) -> list[Job]:
    """Oldest first, with ceil-free reservation: max(1, capacity // 4) slots for small jobs when offered."""
    if capacity <= 0:
        return []

    def age(job: Job) -> tuple[float, str]:
        return (job.created_utc.timestamp() if job.created_utc else float("-inf"), job.id)

    small = sorted((j for j in jobs if j.type in catalog.SMALL_JOB_TYPES), key=age)
    reserved = small[: min(len(small), max(1, capacity // 4))]
    rest = sorted((j for j in jobs if j not in reserved), key=age)
    return sorted(reserved + rest[: capacity - len(reserved)], key=age)


def poll(services: Services, *, max_in_flight: int) -> PollResult:
    result = PollResult()
    index = services.records.active_index()  # one query: the jobs in flight, and the pause if any
    if (cause := _paused(services, services.pause.among(index))) is not None:
        result.paused = cause
        return result
    result.capacity = max_in_flight - count_in_flight(index)
    if result.capacity <= 0:
        log.info("poll: at capacity (%d jobs in flight); not asking for more", max_in_flight)
        return result
    jobs = services.registry.list_jobs(types=catalog.NAMES)
    result.offered = len(jobs)
    if not jobs:
        return result
    for job in choose(jobs, result.capacity):
        if not _take(job, services, result):
            log.warning("poll: the Registry is unavailable or rate limiting; the other jobs wait for the next poll")
            break
    log.info(
        "poll: %d offered, %d locked, %d skipped, %d canceled, %d given up, %d released (capacity %d)",
        result.offered,
        len(result.locked),
        len(result.skipped),
        len(result.canceled),
        len(result.problems),
        len(result.released),
        result.capacity,
    )
    return result


def _paused(services: Services, pause: PauseState | None) -> str | None:
    """The cause while the agent is paused; when the pause is over, probe the VMS: resume, or pause again."""
    if pause is None:
        return None
    if utc_now() < pause.until:
        log.debug("poll: paused until %s (%s)", pause.until.isoformat(timespec="seconds"), pause.cause)
        return pause.cause
    try:
        next(iter(services.vms.list_cameras()), None)
    except Exception as exc:  # noqa: BLE001 - only our own misconfiguration keeps the pause
        if disposition_of(exc) is Disposition.MISCONFIGURED:
            return services.pause.pause(f"{pause.cause} (checked again: {_describe(exc)})").cause
        log.warning("poll: the pause is over; the VMS check failed (%s), but not for our configuration", _describe(exc))
    services.pause.resume()
    return None


def _take(job: Job, services: Services, result: PollResult) -> bool:
    """One job taken starts the job's trace (its job message carries it); its lines carry its dimensions."""
    with job_context(job_id=job.id, job_type=job.type), job_trace("poll_jobs take"):
        return _take_one(job, services, result)


def _take_one(job: Job, services: Services, result: PollResult) -> bool:
    """Lock, record and enqueue one job; False when the Registry as a whole is failing (stop this poll)."""
    registry, records = services.registry, services.records
    context = {"job_id": job.id, "job_type": job.type}
    try:
        lock = registry.lock(job.id)
    except NotOurs as exc:  # another agent holds it, or it is gone
        log.info("poll: job %s not taken: %s", job.id, type(exc).__name__, extra=context)
        result.skipped.append(job.id)
        return True
    except RegistryUnauthorized:
        raise
    except RegistryBadRequest as exc:  # refused outright: nothing was locked
        log.error("poll: job %s not taken: %s", job.id, exc, extra=context)
        result.skipped.append(job.id)
        return True
    except Exception as exc:  # noqa: BLE001 - the lock may have been taken: it must not be left behind
        _recover_and_release(job, registry, result, f"the lock answer was unusable ({_describe(exc)})")
        return not isinstance(exc, RegistryUnavailable)
    token = lock.lock_token
    parameters = json.dumps(job.parameters, separators=(",", ":"))
    inline = parameters if len(parameters) <= INLINE_PARAMETERS else ""
    try:
        record = records.create(LockRecord(job.id, job.type, token, lock.lock_expiration_utc, parameters=inline))
    except Exception as exc:  # noqa: BLE001 - any failure after the lock releases the job
        _give_up(job, token, services, result, f"lock record write failed ({_describe(exc)})")
        return True
    if (reason := reason_to_end(record, services)) is not None:
        return _cancel(record, services, result, reason)
    if not inline:  # too large for the record: a row of its own
        try:
            services.ledger.put_job(OfferedJob(job.id, record.generation, job.type, job.parameters, job.created_utc))
        except JobTooLarge as exc:
            return _cancel(record, services, result, f"the job is too large for this agent: {exc}")
        except Exception as exc:  # noqa: BLE001 - any failure after the lock releases the job
            _give_up(job, token, services, result, f"storing the job failed ({_describe(exc)})")
            return True
    try:
        send_message(services.queue, encode_job(job.id, record.generation, new=True))
    except Exception as exc:  # noqa: BLE001 - any failure after the lock releases the job
        _give_up(job, token, services, result, f"enqueue failed ({_describe(exc)})")
        return True
    result.locked.append(job.id)
    log.info("poll: locked and queued job %s until %s%s", job.id, record.lock_expires.isoformat(),
             f" (lock {record.locks} of this job)" if record.locks > 1 else "", extra=context)  # fmt: skip
    return True


def _cancel(record: LockRecord, services: Services, result: PollResult, reason: str) -> bool:
    try:
        cancel_job(services, record, reason)
    except Exception as exc:  # noqa: BLE001 - the record stays Queued; the planner ends it (same check)
        log.error("poll: canceling job %s failed (%s); its planner will try again", record.job_id, _describe(exc))
        send_message(services.queue, encode_job(record.job_id, record.generation))
        return True
    result.canceled.append(record.job_id)
    return True


def _recover_and_release(job: Job, registry: RegistryClient, result: PollResult, reason: str) -> None:
    """The lock call's outcome is unknown and we have no token: lock again (the Registry returns the lock
    this agent already holds, if any) and release what that gives."""
    context = {"job_id": job.id, "job_type": job.type}
    try:
        lock = registry.lock(job.id)
    except NotOurs as exc:
        log.warning("poll: job %s not taken: %s; the Registry says it is not ours (%s)", job.id, reason,
                    type(exc).__name__, extra=context)  # fmt: skip
        result.skipped.append(job.id)
        return
    except Exception as exc:  # noqa: BLE001 - nothing more can be done in this poll
        result.problems[job.id] = reason
        log.error(
            "poll: gave up job %s: %s; could not get its lock token back to release it (%s): if the Registry "
            "locked it for us, that lock expires on its own",
            job.id, reason, _describe(exc), extra=context,
        )  # fmt: skip
        return
    outcome = _release(job, lock.lock_token, registry, result)
    result.problems[job.id] = reason
    log.error("poll: gave up job %s: %s; %s", job.id, reason, outcome, extra=context)


def _give_up(job: Job, token: str, services: Services, result: PollResult, reason: str) -> None:
    """Release a job locked in this poll and say why: in its lock record when it has one, and one log line."""
    outcome = _release(job, token, services.registry, result)
    noted = _note_in_record(services, job.id, token, f"{reason}; {outcome}")
    result.problems[job.id] = reason
    log.error("poll: gave up job %s: %s; %s%s", job.id, reason, outcome, noted,
              extra={"job_id": job.id, "job_type": job.type})  # fmt: skip


def _release(job: Job, token: str, registry: RegistryClient, result: PollResult) -> str:
    """Releases the job; returns what happened, for the log line and the record."""
    try:
        registry.release(job.id, token)
    except LockTokenRefused:
        return "it was already no longer ours"
    except Exception as exc:  # noqa: BLE001 - reported; the lock then expires on its own
        return f"releasing it failed too ({_describe(exc)}), so its lock expires on its own"
    result.released.append(job.id)
    return "released it"


def _note_in_record(services: Services, job_id: str, token: str, reason: str) -> str:
    """Ends this lock's record Released with the reason (and its `Job ended` line), if there is one."""
    try:
        record = services.records.get(job_id)
        if record is None or record.generation != generation_of(token):
            return " (no lock record of this lock to update)"
        return (
            ""
            if end_job(services.records, record, RecordState.RELEASED, reason)
            else " (its lock record had already ended)"
        )
    except Exception as exc:  # noqa: BLE001 - the log line still says why
        return f" (the lock record could not be updated either: {_describe(exc)})"


def _describe(exc: BaseException) -> str:
    """The error's type and the first line of its message, short and scrubbed of secrets."""
    first_line = (str(exc).strip().splitlines() or [""])[0]
    text = f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__
    return scrub(text)[:300]
