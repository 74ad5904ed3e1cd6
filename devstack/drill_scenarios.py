"""The drill's named scenarios: each sets up real work on the local stack with the simulators' controls,
waits for it, and checks its own guarantee (docs/drill.md says what each one sets up and checks).

A scenario is one function `(ScenarioContext) -> Outcome` in `SCENARIOS`, with the lanes it runs on; the
drill runs them side by side, each on its own thread, each with its own jobs and faults scoped to them.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import requests
from azure.core.exceptions import ResourceNotFoundError

from devstack.drill_lanes import CLOCK_AHEAD_SECONDS, Lane
from devstack.registry_sim.control import SimulatorControlError
from devstack.stack import LocalStack

FINAL = frozenset({"Completed", "PartiallyCompleted", "Failed", "Canceled"})
DONE = frozenset({"Completed", "PartiallyCompleted"})
LOST_ENDINGS = frozenset({"expired", "taken over"})
"""How a lock ends when the Registry takes it away (the only endings that justify a record marked Lost)."""


@dataclass
class Outcome:
    passed: bool
    detail: str
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"passed": self.passed, "seconds": round(self.seconds, 1), "detail": self.detail}


class ScenarioContext(Protocol):
    """What a scenario may do (the drill implements it)."""

    deadline: float
    """time.monotonic() by which the scenario must have given its verdict."""
    slow_export_seconds: float

    def lane(self, name: str) -> Lane: ...

    def post(
        self,
        lane: Lane,
        job_type: str,
        parameters: Any,
        expected_files: int,
        label: str,
        *,
        verify_content: bool = True,
        offered_to: str | None = None,
    ) -> str:
        """A job of this scenario (counted in the drill's figures), offered to the lane's agent (or to
        `offered_to`); returns its id."""
        ...

    def restart_hosts(self, lane: Lane, *, kill: bool) -> None:
        """Every host of the lane stopped (SIGKILL with `kill`, else SIGTERM as on a settings change) and
        started again with the lane's settings as they are now (done on the drill's main thread)."""
        ...

    def expect_poison(self, job_id: str) -> None:
        """The job's messages may end in the poison queue: not counted against poison_messages."""
        ...

    def false_lost(self, job_id: str) -> int:
        """How many of the job's lock records were seen marked Lost while the Registry held that lock."""
        ...


# ---- shared helpers ---------------------------------------------------------------------------------


NOBODY = "drill-nobody"
"""An agent id no lane has: a job offered to it waits until it is offered to its lane."""


def state_of(detail: dict[str, Any]) -> str:
    return detail.get("CompletionState") or detail["State"]


def wait_until(condition: Callable[[], bool], deadline: float, interval: float = 1.0) -> bool:
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def wait_final(lane: Lane, job_ids: Iterable[str], deadline: float) -> dict[str, str]:
    """Waits until every job is final at the Registry (or the deadline); returns each one's state."""
    ids = list(job_ids)
    states: dict[str, str] = {}

    def all_final() -> bool:
        for job_id in ids:
            if states.get(job_id) not in FINAL:
                states[job_id] = state_of(lane.registry.job(job_id))
        return all(states[job_id] in FINAL for job_id in ids)

    wait_until(all_final, deadline)
    return states


def lock_count(lane: Lane, job_id: str) -> int:
    return len(lane.registry.lock_history(job_id))


def delivered(detail: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in detail["Files"] if f["Completed"]]


def generation(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:16]


def record_state(lane: Lane, job_id: str) -> str | None:
    record = lane.records().get(job_id)
    return None if record is None else record.state


def hour_window(hours: float, *, before: timedelta = timedelta(minutes=30)) -> tuple[datetime, datetime]:
    """A window of `hours` ending on the hour at least `before` ago (footage that is surely recorded)."""
    end = (datetime.now(UTC) - before).replace(minute=0, second=0, microsecond=0)
    return end - timedelta(hours=hours), end


def span(start: datetime, end: datetime) -> list[list[str]]:
    return [[start.isoformat(), end.isoformat()]]


def media_windows(cameras: Iterable[str], start: datetime, end: datetime) -> dict[str, Any]:
    return {
        "Cameras": [{"CameraId": c, "StartTimeUtc": start.isoformat(), "EndTimeUtc": end.isoformat()} for c in cameras]
    }


def parse_utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def final_check(states: dict[str, str], wanted: frozenset[str]) -> str:
    """'' when every job ended in one of `wanted`; otherwise which did not."""
    wrong = {job[:8]: state for job, state in states.items() if state not in wanted}
    return "" if not wrong else f"jobs not {'/'.join(sorted(wanted))}: {wrong}"


def verdict(problems: list[str], facts: str) -> Outcome:
    problems = [p for p in problems if p]
    return Outcome(not problems, "; ".join(problems) + (" — " if problems else "") + facts)


# ---- the scenarios ----------------------------------------------------------------------------------


def over_2gib(ctx: ScenarioContext) -> Outcome:
    """Two cameras, 2 hours each at 1.3 Mbit/s (~2.3 GB): a job whose byte counters pass 2^31."""
    lane = ctx.lane("main")
    start, end = hour_window(2)
    cameras = [lane.vms.add_camera(Name=f"2 GiB {i + 1}", Recordings=span(start, end))["Id"] for i in range(2)]
    for camera in cameras:
        lane.vms.set_camera_media(camera, bitrate_kbps=1300)
    job = ctx.post(lane, "mediarequest", media_windows(cameras, start, end), 16, "2 cameras, 2 h, 1.3 Mbit/s",
                   verify_content=False)  # fmt: skip
    states = wait_final(lane, [job], ctx.deadline)
    files = delivered(lane.registry.job(job))
    size = sum((f.get("Verification") or {}).get("Size") or 0 for f in files)
    return verdict(
        [final_check(states, frozenset({"Completed"})), "" if size > 2**31 else f"only {size} bytes delivered"],
        f"{states[job]}, {len(files)}/16 files, {size / 2**30:.2f} GiB",
    )


def lock_expired_mid_item(ctx: ScenarioContext) -> Outcome:
    """The Registry expires the lock while a file's blocks upload; the job is locked again and completes,
    and nothing of the old lock's run marks the new lock's record Lost."""
    lane = ctx.lane("main")
    start, end = hour_window(0.5)
    camera = lane.vms.add_camera(Name="Expiring lock", Recordings=span(start, end))["Id"]
    # offered to nobody until the fault is armed: a fast agent could otherwise upload before it is
    job = ctx.post(lane, "mediarequest", media_windows([camera], start, end), 2, "lock expired mid-item",
                   offered_to=NOBODY)  # fmt: skip
    fault = lane.registry.add_step_fault("PutBlock", "Hold", job_id=job, hold_seconds=120)
    lane.registry.offer(job, lane.agent_id)
    try:
        held = lane.registry.wait_for_hold(fault_id=fault["Id"], timeout=max(1.0, ctx.deadline - time.monotonic()))
    except TimeoutError:
        return Outcome(False, "no Put Block of the job was seen to hold")
    lane.registry.expire_lock(job)
    lane.registry.release_holds(held["Id"])
    states = wait_final(lane, [job], ctx.deadline)
    locks = lane.registry.lock_history(job)
    false_lost = ctx.false_lost(job)
    endings = [lock["Ending"] for lock in locks]
    # The scenario's own expired lock, then the one that completed. Earlier locks may only have expired:
    # a host killed between the Registry's lock and the lock record leaves a lock nobody knows of, which
    # expires before the job is offered again (the kill drill runs meanwhile).
    expected = endings[-2:] == ["expired", "completed"] and set(endings[:-1]) == {"expired"}
    return verdict(
        [
            final_check(states, frozenset({"Completed"})),
            "" if expected else "not one expired lock then one that completed",
            "" if not false_lost else f"{false_lost} record(s) marked Lost while the Registry held the lock",
        ],
        f"{states[job]}, {len(locks)} locks ({', '.join(map(str, endings))})",
    )


def slow_export(ctx: ScenarioContext) -> Outcome:
    """An EEN export that takes longer than many item runs (EXPORT_WAIT_SECONDS=2): waiting is not failing,
    the job completes under its first lock."""
    lane = ctx.lane("een_export")
    start, end = hour_window(1 / 6)
    camera = lane.vms.add_camera(Name="Slow export", Recordings=span(start, end))["Id"]
    lane.vms.set_camera_media(camera, export_seconds=ctx.slow_export_seconds)
    job = ctx.post(lane, "mediarequest", media_windows([camera], start, end), 1, "slow export")
    states = wait_final(lane, [job], ctx.deadline)
    locks = lock_count(lane, job)
    exports = [j for j in lane.vms.jobs() if j["CameraId"] == camera]
    return verdict(
        [
            final_check(states, frozenset({"Completed"})),
            "" if locks == 1 else f"{locks} locks",
            "" if exports else "no export was made (the scenario did not test a wait)",
        ],
        f"{states[job]}, {locks} lock(s), {len(exports)} export(s) of {ctx.slow_export_seconds:g} s",
    )


def _thumbnail_cameras(lane: Lane, count: int, label: str) -> list[str]:
    return [lane.vms.add_camera(Name=f"{label} {i + 1}")["Id"] for i in range(count)]


def completion_refused(ctx: ScenarioContext) -> Outcome:
    """The Registry answers the job's completion with 400: the agent cancels it with the reason, quickly;
    its record ends Refused and the `Job ended: state=Refused` line is logged."""
    lane = ctx.lane("main")
    cameras = _thumbnail_cameras(lane, 2, "Refused completion")
    job = ctx.post(lane, "thumbnail", {"CameraIds": cameras}, 2, "completion refused", offered_to=NOBODY)
    lane.registry.add_transform("complete", job_id=job, every=True, processed=False, status=400)
    lane.registry.offer(job, lane.agent_id)  # only now: a fast agent could complete it before the fault
    states = wait_final(lane, [job], ctx.deadline)
    detail = lane.registry.job(job)
    refused = [h for h in detail["History"] if h["Operation"] == "complete" and h["Status"] == 400]
    quick = ""
    if refused and detail["FinishedUtc"]:
        took = (parse_utc(detail["FinishedUtc"]) - parse_utc(refused[0]["TimeUtc"])).total_seconds()
        quick = "" if took <= 60 else f"canceled {took:.0f} s after the first refusal (bound 60 s)"
    line = f"Job ended: state=Refused job_id={job}"
    settle = time.monotonic() + 15  # the Registry shows Canceled before the record's write and the line
    while True:
        state, logged = record_state(lane, job), line in lane.logs()
        if (state == "Refused" and logged) or time.monotonic() > settle:
            break
        time.sleep(0.5)
    return verdict(
        [
            final_check(states, frozenset({"Canceled"})),
            "" if refused else "the completion was never refused (not reached)",
            quick,
            "" if state == "Refused" else f"record {state}, not Refused",
            "" if logged else "no 'Job ended: state=Refused' line",
        ],
        f"{states[job]}, {len(refused)} refused completion(s), record {state}",
    )


POISON_BOUND_SECONDS = 240


def completion_failing(ctx: ScenarioContext) -> Outcome:
    """503 on every completion of the job: the message carrying it reaches the poison queue within the
    bound (not forever); once the fault is removed the job is locked again and completes.

    In a lane of its own (the EEN export lane, which is otherwise light): the bound counts the message's
    tries and backoffs, not its wait behind the main lane's backlog (hundreds of media items queued before
    each retry; on a slow machine that wait alone passed the bound, with the code before and after the
    one-item-job change alike)."""
    lane = ctx.lane("een_export")
    cameras = _thumbnail_cameras(lane, 2, "Failing completion")
    job = ctx.post(lane, "thumbnail", {"CameraIds": cameras}, 2, "completion failing", offered_to=NOBODY)
    ctx.expect_poison(job)
    transform = lane.registry.add_transform(
        "complete", job_id=job, every=True, processed=False, status=503, headers={"Retry-After": "1"}
    )
    lane.registry.offer(job, lane.agent_id)  # only now: a fast agent could complete it before the fault

    def poisoned() -> bool:
        return any(str(m.get("JobId")) == job for m in lane.poison_messages())

    # the bound runs from the job's first lock (a busy agent may take a while to lock it)
    locked = wait_until(lambda: lock_count(lane, job) > 0, ctx.deadline)
    began = time.monotonic()
    reached = locked and wait_until(poisoned, min(ctx.deadline, began + POISON_BOUND_SECONDS), interval=2.0)
    to_poison = time.monotonic() - began
    lane.registry.remove_transform(transform["Id"])
    if not reached:
        return Outcome(
            False, f"no poison message for the job within {to_poison:.0f} s of its lock (the completion retried on)"
        )
    states = wait_final(lane, [job], ctx.deadline)
    locks = lane.registry.lock_history(job)
    released = [lock for lock in locks[:-1] if lock["Ending"] == "released"]
    return verdict(
        [
            final_check(states, frozenset({"Completed"})),
            "" if released else "no lock was released before the last one",
        ],
        f"poison {to_poison:.0f} s after the first lock; then {states[job]}, {len(locks)} locks",
    )


OVERSIZED_CAMERAS = 1300


def oversized_job(ctx: ScenarioContext) -> Outcome:
    """A thumbnail job naming 1,300 cameras with 40-character ids (its parameters, ~55 KB, exceed what a
    Base64 queue message carries): planned and done once, with no lock/release loop."""
    lane = ctx.lane("main")
    cameras = [
        lane.vms.add_camera(Id=f"oversized-{uuid.uuid4()}", Name=f"Oversized {i + 1}")["Id"]
        for i in range(OVERSIZED_CAMERAS)
    ]
    job = ctx.post(lane, "thumbnail", {"CameraIds": cameras}, len(cameras), f"{len(cameras)} cameras")
    states = wait_final(lane, [job], ctx.deadline)
    locks = lock_count(lane, job)
    files = len(delivered(lane.registry.job(job)))
    return verdict(
        [
            final_check(states, frozenset({"Completed"})),
            "" if locks == 1 else f"{locks} locks",
            "" if files == len(cameras) else f"{files}/{len(cameras)} thumbnails",
        ],
        f"{states[job]}, {files}/{len(cameras)} thumbnails, {locks} lock(s)",
    )


def many_gaps(ctx: ScenarioContext) -> Outcome:
    """8 cameras with 60 short recordings each in a 2-hour window: a plan with hundreds of gaps and items,
    done under one lock, PartiallyCompleted."""
    lane = ctx.lane("main")
    start, end = hour_window(2)
    recordings = [
        [(start + timedelta(seconds=120 * k)).isoformat(), (start + timedelta(seconds=120 * k + 20)).isoformat()]
        for k in range(60)
    ]
    cameras = [lane.vms.add_camera(Name=f"Gaps {i + 1}", Recordings=recordings)["Id"] for i in range(8)]
    for camera in cameras:
        lane.vms.set_camera_media(camera, bitrate_kbps=100)
    job = ctx.post(lane, "mediarequest", media_windows(cameras, start, end), 480, "8 cameras, 60 recordings each")
    states = wait_final(lane, [job], ctx.deadline)
    locks = lock_count(lane, job)
    files = len(delivered(lane.registry.job(job)))
    return verdict(
        [
            final_check(states, frozenset({"PartiallyCompleted"})),
            "" if locks == 1 else f"{locks} locks",
            "" if files == 480 else f"{files}/480 files",
        ],
        f"{states[job]}, {files}/480 files, {locks} lock(s)",
    )


def registry_clock_ahead(ctx: ScenarioContext) -> Outcome:
    """The Registry's clock runs 90 s ahead of the hosts' (60-second locks): renewal timed by the Registry's
    own clock loses no lock; the job completes under one lock."""
    lane = ctx.lane("clock")
    answer = requests.get(lane.registry.base_url + "/_sim/clock", timeout=10)
    skew = (parse_http_date(answer.headers["Date"]) - datetime.now(UTC)).total_seconds()
    start, end = hour_window(1 / 6)
    # an export slower than one lock (the lane uses EEN's export route): the job lives through renewals
    camera = lane.vms.add_camera(Name="Clock ahead", Recordings=span(start, end))["Id"]
    lane.vms.set_camera_media(camera, export_seconds=75)
    job = ctx.post(lane, "mediarequest", media_windows([camera], start, end), 1, "registry clock ahead")
    states = wait_final(lane, [job], ctx.deadline)
    locks = lane.registry.lock_history(job)
    taken = [lock["Ending"] for lock in locks if lock["Ending"] in LOST_ENDINGS]
    return verdict(
        [
            "" if abs(skew - CLOCK_AHEAD_SECONDS) < 5 else f"the Registry's Date header is {skew:.0f} s ahead",
            final_check(states, frozenset({"Completed"})),
            "" if len(locks) == 1 and not taken else f"{len(locks)} locks, lost: {taken}",
        ],
        f"{states[job]}, {len(locks)} lock(s), Registry {skew:.0f} s ahead",
    )


def parse_http_date(text: str) -> datetime:
    return parsedate_to_datetime(text).astimezone(UTC)


def kill_after_export_created(ctx: ScenarioContext) -> Outcome:
    """EEN (export route) and Rhombus: the VMS creates the export or clip, then holds its answer
    (HoldAfterCreate) and the host waiting for it is killed; nothing may stay in the customer's account and
    the job ends."""
    facts, problems = [], []
    for name in ("een_export", "rhombus"):
        found, fact = _killed_after_create(ctx, ctx.lane(name))
        problems += found
        facts.append(fact)
    return verdict(problems, "; ".join(facts))


LEFTOVER_GRACE_SECONDS = 60
"""How long after its job ended an export or clip may still be in the VMS (its clean-up runs by the queue)."""


def _killed_after_create(ctx: ScenarioContext, lane: Lane) -> tuple[list[str], str]:
    start, end = hour_window(1 / 6)
    camera = lane.vms.add_camera(Name=f"Killed after create ({lane.name})", Recordings=span(start, end))["Id"]
    lane.vms.hold_after_create(count=1, seconds=120)
    job = ctx.post(lane, "mediarequest", media_windows([camera], start, end), 1, f"killed after create ({lane.name})")
    held = wait_until(lambda: lane.vms.held() > 0, min(ctx.deadline, time.monotonic() + 90), interval=0.2)
    if held:
        ctx.restart_hosts(lane, kill=True)  # the host waiting for the held answer dies with it
        lane.vms.release_held()  # the answer goes to no one
    created = any(j["CameraId"] == camera for j in lane.vms.jobs())
    states = wait_final(lane, [job], ctx.deadline)
    ended = time.monotonic()
    clean = wait_until(lambda: not lane.vms.leftovers(), min(ctx.deadline, ended + LEFTOVER_GRACE_SECONDS))
    leftovers, clean_after = len(lane.vms.leftovers()), time.monotonic() - ended
    problems = [
        "" if held and created else f"{lane.name}: no create answer was held (nothing to kill in between)",
        final_check(states, FINAL),
        "" if clean else f"{lane.name}: {leftovers} leftover(s) in the VMS {clean_after:.0f} s after the job ended",
    ]
    return problems, f"{lane.name}: {states[job]}, clean {clean_after:.0f} s after the job ended"


REFUSAL_SECONDS = 60


def credential_refused(ctx: ScenarioContext) -> Outcome:
    """The VMS refuses the stored EEN grant (invalid_grant) for a minute: the agent pauses instead of
    locking and releasing at every poll; once the operator configures a new consent the jobs are done."""
    lane = ctx.lane("credential")
    pause = float(lane.settings["AGENT_PAUSE_SECONDS"])
    lane.vms.revoke_grant()
    cameras = [c["Id"] for c in lane.vms.cameras() if c["Online"] and c["HasRecordings"]][:6]
    jobs = [
        ctx.post(lane, "thumbnail", {"CameraIds": cameras[2 * n : 2 * n + 2]}, 2, "credential refused")
        for n in range(3)
    ]
    time.sleep(max(0.0, min(REFUSAL_SECONDS, ctx.deadline - time.monotonic() - 60)))
    while_refused = {job: lock_count(lane, job) for job in jobs}
    # the operator's fix: a new consent, configured as EEN_REFRESH_TOKEN (a new seed replaces the stored
    # grant); the app restarts on the settings change
    lane.settings["EEN_REFRESH_TOKEN"] = lane.vms.new_grant()
    ctx.restart_hosts(lane, kill=False)
    states = wait_final(lane, jobs, ctx.deadline)
    bound = 2 + REFUSAL_SECONDS / pause
    return verdict(
        [
            ""
            if max(while_refused.values()) <= bound
            else f"locks while refused {sorted(while_refused.values())} (bound {bound:g}: a lock/release loop)",
            final_check(states, DONE),
        ],
        f"locks while refused {sorted(while_refused.values())}; then {sorted(states.values())}",
    )


# ---- fencing: records marked Lost while the Registry still held the lock ------------------------------


def lost_records(lane: Lane) -> list[dict[str, Any]]:
    try:
        return list(lane.table().query_entities("PartitionKey eq 'job' and State eq 'Lost'"))
    except ResourceNotFoundError:  # the agent has not created its table yet
        return []


def is_false_lost(lane: Lane, entity: dict[str, Any]) -> bool:
    """A record marked Lost is false when the Registry had not taken that lock away (expired or taken
    over) by the time the record was marked."""
    gen = entity.get("Generation") or generation(entity.get("LockToken", ""))
    marked = entity.get("FinishedUtc") or entity.get("UpdatedUtc")
    try:
        locks = lane.registry.lock_history(entity["RowKey"])
    except SimulatorControlError:
        return False  # not a job of this Registry
    for lock in locks:
        if generation(lock["LockToken"]) != gen:
            continue
        if lock["Ending"] not in LOST_ENDINGS or marked is None:
            return True
        return parse_utc(lock["EndedHostUtc"]) > marked + timedelta(seconds=2)
    return False


class LostWatch:
    """Samples the lanes' lock records marked Lost while the drill runs: a record marked Lost is replaced
    by the job's next lock, so the end of the drill would not see it."""

    def __init__(self, lanes: Iterable[Lane]) -> None:
        self.lanes = list(lanes)
        self.seen: dict[tuple[str, str, str], tuple[Lane, dict[str, Any]]] = {}

    def sample(self) -> None:
        for lane in self.lanes:
            for entity in lost_records(lane):
                gen = entity.get("Generation") or generation(entity.get("LockToken", ""))
                self.seen.setdefault((lane.name, entity["RowKey"], gen), (lane, dict(entity)))

    def false_lost(self, job_id: str | None = None) -> int:
        self.sample()
        return sum(
            1
            for (_, job, _), (lane, entity) in list(self.seen.items())
            if (job_id is None or job == job_id) and is_false_lost(lane, entity)
        )


def missing_after_create_fault(stack: LocalStack) -> str | None:
    """Why kill_after_export_created cannot run (the VMS simulators cannot hold a create answer), or None."""
    return None if hasattr(stack.een.control, "hold_after_create") else "control missing"


@dataclass(frozen=True)
class Scenario:
    run: Callable[[ScenarioContext], Outcome]
    lanes: tuple[str, ...]
    unavailable: Callable[[LocalStack], str | None] = lambda stack: None
    """Why the scenario cannot run on this stack (checked before any lane starts), or None."""


SCENARIOS: dict[str, Scenario] = {
    "over_2gib": Scenario(over_2gib, ("main",)),
    "lock_expired_mid_item": Scenario(lock_expired_mid_item, ("main",)),
    "slow_export": Scenario(slow_export, ("een_export",)),
    "completion_refused": Scenario(completion_refused, ("main",)),
    "completion_failing": Scenario(completion_failing, ("een_export",)),
    "oversized_job": Scenario(oversized_job, ("main",)),
    "many_gaps": Scenario(many_gaps, ("main",)),
    "registry_clock_ahead": Scenario(registry_clock_ahead, ("clock",)),
    "kill_after_export_created": Scenario(
        kill_after_export_created, ("een_export", "rhombus"), missing_after_create_fault
    ),
    "credential_refused": Scenario(credential_refused, ("credential",)),
}
