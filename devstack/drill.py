"""`make drill`: the resilience drill — random host kills while real work is in flight, and named scenarios.

Starts the local stack and the agent's Functions host processes (lanes: devstack/drill_lanes.py). On the
main lane it posts a mix that includes a 3-camera, 2-hour media request and a 1,000-camera discovery,
kills a random host (SIGKILL: no cleanup) at random moments and starts it again, injects Registry 503/429
answers and VMS mid-stream drops. Side by side it runs the named scenarios (devstack/drill_scenarios.py,
docs/drill.md), each on its own jobs, each checked for its own guarantee. It waits until every job is
final, and prints as its last line one JSON object. Exits non-zero when a target is missed:

    every scenario passes; lost_jobs = duplicate_files = stuck_locks = poison_messages (beyond those a
    scenario expects) = vms_leftovers = false_lost = stuck_plans = 0; jobs_final = jobs;
    items_redone <= kills * max_items_in_flight_per_host; seconds < --max-seconds (480 on the full drill).

The queue's message visibility is shortened (a killed host's messages reappear after a few seconds
instead of the real host's 10 minutes) and the engine's waits are shrunk by settings so the drill fits.
"""

from __future__ import annotations

import argparse
import json
import queue
import random
import tempfile
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from devstack.drill_lanes import STACK_LOCK_SECONDS, Lane, LaneFactory
from devstack.drill_scenarios import (
    FINAL,
    SCENARIOS,
    LostWatch,
    Outcome,
    parse_utc,
    state_of,
)
from devstack.funchost.logs import invocation_stats
from devstack.registry_sim.config import SimConfig
from devstack.stack import LocalStack
from shared.agent.jobs.media import segments
from shared.agent.work.ledger import Ledger
from shared.vms.base import Interval

SCENARIO_GRACE_SECONDS = 30
"""Scenarios give their verdict this long before the drill gives up, so that it can still measure."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kills", type=int, default=20, help="host kills to inflict (20)")
    parser.add_argument("--no-kills", action="store_true", help="no kills and no kill-drill jobs: scenarios only")
    parser.add_argument(
        "--scenarios", default="all", help=f"comma-separated scenarios, 'all' or 'none' ({', '.join(SCENARIOS)})"
    )
    parser.add_argument("--cameras", type=int, default=3, help="cameras in the big media request (3)")
    parser.add_argument("--hours", type=float, default=2.0, help="window of the big media request (2 h)")
    parser.add_argument("--bitrate-kbps", type=int, default=450, help="simulated bitrate (450 kbit/s ≈ 405 MB per 2 h)")
    parser.add_argument("--discovery-cameras", type=int, default=1000, help="cameras in the account (1000)")
    parser.add_argument("--extra-media", type=int, default=4, help="smaller media requests besides the big one (4)")
    parser.add_argument("--thumbnail-cameras", type=int, default=60, help="cameras in the thumbnail job (60)")
    parser.add_argument("--hosts", type=int, default=2, help="Functions host processes of the main lane (2)")
    parser.add_argument("--slow-export-seconds", type=float, default=60, help="slow_export's export time (60 s)")
    parser.add_argument("--max-seconds", type=float, default=480, help="target time (480 s); gives up 120 s later")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")


def options(**overrides: Any) -> argparse.Namespace:
    """The drill's options: the command line's defaults with `overrides` (tests)."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([])
    for name, value in overrides.items():
        if not hasattr(args, name):
            raise TypeError(f"no drill option {name!r}")
        setattr(args, name, value)
    return args


def chosen_scenarios(text: str) -> list[str]:
    if text.strip() in ("", "none"):
        return []
    if text.strip() == "all":
        return list(SCENARIOS)
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    return names


@dataclass
class DrillJob:
    job_id: str
    kind: str
    expected_files: int
    label: str
    lane: Lane
    kill_drill: bool = False
    """One of the kill drill's own jobs (items_redone is bounded by the kills for these only)."""


@dataclass
class RestartRequest:
    lane: Lane
    kill: bool
    done: threading.Event


class Drill:
    """The kill drill on the main lane and the scenarios on theirs; the ScenarioContext the scenarios use."""

    def __init__(self, args: argparse.Namespace, stack: LocalStack, workdir: Path) -> None:
        self.args, self.stack, self.workdir = args, stack, workdir
        self.rng = random.Random(args.seed)
        self.kill_target = 0 if args.no_kills else args.kills
        self.scenario_names = chosen_scenarios(args.scenarios)
        self.slow_export_seconds = float(args.slow_export_seconds)
        self.factory = LaneFactory(stack, args.hosts)
        self.lanes: dict[str, Lane] = {}
        self.kills = 0
        self.jobs: list[DrillJob] = []
        self.expected_poison: set[str] = set()
        self.outcomes: dict[str, Outcome] = {}
        self.deadline = 0.0
        self.lost_watch = LostWatch([])
        self._lock = threading.Lock()
        self._restart_requests: queue.Queue[RestartRequest] = queue.Queue()

    # ---- ScenarioContext ------------------------------------------------------------------------

    def lane(self, name: str) -> Lane:
        return self.lanes[name]

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
        job_id = lane.post(job_type, parameters, verify_content=verify_content, agent_id=offered_to)
        with self._lock:
            self.jobs.append(DrillJob(job_id, job_type, expected_files, label, lane))
        return job_id

    def restart_hosts(self, lane: Lane, *, kill: bool) -> None:
        request = RestartRequest(lane, kill, threading.Event())
        self._restart_requests.put(request)
        request.done.wait(120)

    def expect_poison(self, job_id: str) -> None:
        with self._lock:
            self.expected_poison.add(job_id)

    def false_lost(self, job_id: str) -> int:
        with self._lock:
            return self.lost_watch.false_lost(job_id)

    # ---- set-up -----------------------------------------------------------------------------------

    def post_kill_drill_jobs(self) -> None:
        args, lane = self.args, self.lanes["main"]
        vms = lane.vms
        vms.configure(BitrateKbps=args.bitrate_kbps)
        vms.seed_cameras(max(0, args.discovery_cameras - args.cameras - args.extra_media * 2))
        end = (datetime.now(UTC) - timedelta(minutes=30)).replace(minute=0, second=0, microsecond=0)
        start = end - timedelta(hours=args.hours)
        span = [[(start - timedelta(hours=1)).isoformat(), end.isoformat()]]
        big = [vms.add_camera(Name=f"Drill {i + 1}", Recordings=span)["Id"] for i in range(args.cameras)]
        self._media(big, start, end, "big request")
        for n in range(args.extra_media):
            cameras = [vms.add_camera(Name=f"Extra {n}.{i}", Recordings=span)["Id"] for i in range(2)]
            minutes = self.rng.choice([20, 35, 50])
            extra_start = end - timedelta(minutes=self.rng.randint(minutes, int(args.hours * 60)))
            self._media(cameras, extra_start, extra_start + timedelta(minutes=minutes), f"{minutes} min")
        all_cameras = [c["Id"] for c in vms.cameras()]
        online = [c["Id"] for c in vms.cameras() if c["Online"] and c["HasRecordings"]]
        thumbs = self.rng.sample(online, k=min(len(online), args.thumbnail_cameras))
        self.post(lane, "thumbnail", {"CameraIds": thumbs}, len(thumbs), f"{len(thumbs)} cameras")
        self.post(lane, "discovery", {}, 1, f"{len(all_cameras)} cameras")
        for job in self.jobs:
            job.kill_drill = True

    def _media(self, cameras: list[str], start: datetime, end: datetime, label: str) -> None:
        windows = [{"CameraId": c, "StartTimeUtc": start.isoformat(), "EndTimeUtc": end.isoformat()} for c in cameras]
        expected = len(cameras) * len(segments(Interval(start, end), timedelta(minutes=15)))
        label = f"{len(cameras)} cameras, {label}"
        self.post(self.lanes["main"], "mediarequest", {"Cameras": windows}, expected, label)

    def build_lanes(self) -> list[str]:
        """The lanes the chosen scenarios and the kill drill need; returns the scenarios that can run."""
        runnable, needed = [], {"main"} if self.kill_target else set()
        for name in self.scenario_names:
            reason = SCENARIOS[name].unavailable(self.stack)
            if reason is not None:
                self.outcomes[name] = Outcome(False, reason)
                continue
            runnable.append(name)
            needed.update(SCENARIOS[name].lanes)
        for lane_name in sorted(needed, key=lambda n: n != "main"):
            self.lanes[lane_name] = self.factory.build(lane_name)
        self.lost_watch = LostWatch(self.lanes.values())
        return runnable

    # ---- hosts --------------------------------------------------------------------------------------

    def strike(self) -> None:
        """Kill a random host of the main lane (SIGKILL) and start it again; now and then a Registry or VMS
        fault too. Runs on the main thread: host processes started here die with the drill if it is
        interrupted."""
        lane = self.lanes["main"]
        slot = self.rng.choice(lane.hosts)
        if slot.process is not None:
            slot.process.kill()
            self.kills += 1
        lane.start_host(slot, self.workdir)
        if self.kills % 4 == 1:
            operation = self.rng.choice(["initialize_upload", "complete_media", "renew", "progress", "lock"])
            lane.registry.inject_fault(operation, self.rng.choice([503, 429]), count=2, retry_after=1)
        if self.kills % 3 == 0:
            lane.vms.drop_downloads(after_bytes=self.rng.randint(1, 40) * 1_000_000, count=2)

    def serve_restart_requests(self) -> None:
        while not self._restart_requests.empty():
            request = self._restart_requests.get_nowait()
            for slot in request.lane.hosts:
                if slot.process is not None and request.kill:
                    slot.process.kill()
                elif slot.process is not None:
                    slot.process.stop(timeout=10)
                request.lane.start_host(slot, self.workdir)
            request.done.set()

    # ---- the run --------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        started = time.monotonic()
        give_up = started + self.args.max_seconds + 120
        self.deadline = give_up - SCENARIO_GRACE_SECONDS
        runnable = self.build_lanes()
        threads: list[threading.Thread] = []
        self.stack.sim.configure(lock_duration_seconds=STACK_LOCK_SECONDS)
        try:
            if self.kill_target:
                self.post_kill_drill_jobs()
            for lane in self.lanes.values():
                for slot in lane.hosts:
                    lane.start_host(slot, self.workdir)
            threads = [self._start_scenario(name) for name in runnable]
            next_strike = time.monotonic() + self.rng.uniform(1.0, 3.0)
            next_sample = time.monotonic()
            while time.monotonic() < give_up:
                self.serve_restart_requests()
                if time.monotonic() >= next_sample:
                    with self._lock:
                        self.lost_watch.sample()
                    next_sample = time.monotonic() + 1.0
                if self.kills < self.kill_target and time.monotonic() >= next_strike:
                    self.strike()
                    next_strike = time.monotonic() + self.rng.uniform(1.0, 3.0)
                if self.kills >= self.kill_target and not any(t.is_alive() for t in threads) and self.all_final():
                    self.settle(min(give_up, time.monotonic() + 20))
                    break
                time.sleep(0.3)
        finally:
            for lane in self.lanes.values():
                lane.stop_hosts()
            self.stack.sim.configure(lock_duration_seconds=SimConfig().lock_duration_seconds)
        for name in runnable:
            self.outcomes.setdefault(name, Outcome(False, "no verdict before the drill gave up"))
        try:
            result = self.measure(time.monotonic() - started)
            self.report_jobs()
            return result
        finally:
            self.factory.stop()

    def report_jobs(self) -> None:
        simulators = {lane.vms.base_url: lane for lane in self.lanes.values()}
        for lane in simulators.values():
            for leftover in lane.vms.leftovers():
                print(f"  leftover in the VMS of lane {lane.name}: {leftover}")
        for job in self.jobs:
            detail = job.lane.registry.job(job.job_id)
            done = sum(1 for f in detail["Files"] if f["Completed"])
            print(
                f"  {job.lane.name:<10} {job.job_id[:8]} {job.kind:<12} {state_of(detail):<19} "
                f"{done:>4}/{job.expected_files:<4} {len(job.lane.registry.lock_history(job.job_id))} lock(s) "
                f"{job.label}"
            )

    def _start_scenario(self, name: str) -> threading.Thread:
        def run() -> None:
            began = time.monotonic()
            try:
                outcome = SCENARIOS[name].run(self)
            except Exception as exc:  # noqa: BLE001 - a scenario that breaks is a failed scenario, with the reason
                outcome = Outcome(False, f"error: {type(exc).__name__}: {exc}"[:500])
                traceback.print_exc()
            outcome.seconds = time.monotonic() - began
            with self._lock:
                self.outcomes[name] = outcome
            print(f"  scenario {name}: {'passed' if outcome.passed else 'FAILED'} — {outcome.detail}", flush=True)

        thread = threading.Thread(target=run, name=f"scenario-{name}", daemon=True)
        thread.start()
        return thread

    def all_final(self) -> bool:
        with self._lock:
            jobs = list(self.jobs)
        states: dict[str, str] = {}
        for registry in {id(job.lane.registry): job.lane.registry for job in jobs}.values():
            states.update({j["Id"]: state_of(j) for j in registry.jobs()})
        return all(states.get(job.job_id) in FINAL for job in jobs)

    def settle(self, until: float) -> None:
        """Gives the agent a few seconds to remove what finished items left in the VMS."""
        while time.monotonic() < until and self.vms_leftovers():
            time.sleep(1)

    # ---- figures --------------------------------------------------------------------------------

    def vms_leftovers(self) -> int:
        simulators = {lane.vms.base_url: lane.vms for lane in self.lanes.values()}
        return sum(len(vms.leftovers()) for vms in simulators.values())

    def measure(self, seconds: float) -> dict[str, Any]:
        details = {job.job_id: job.lane.registry.job(job.job_id) for job in self.jobs}
        locks = {job.job_id: job.lane.registry.lock_history(job.job_id) for job in self.jobs}
        final = [j for j in self.jobs if state_of(details[j.job_id]) in FINAL]
        duplicates = delivered = bytes_delivered = redone = 0
        for job in self.jobs:
            completed = [f for f in details[job.job_id]["Files"] if f["Completed"]]
            names = Counter(f["FileName"] for f in completed)
            duplicates += sum(count - 1 for count in names.values())
            delivered += len(completed)
            bytes_delivered += sum((f.get("Verification") or {}).get("Size") or 0 for f in completed)
            record = job.lane.records().get(job.job_id)
            ledger = Ledger(job.lane.table())
            plan = ledger.get_plan(job.job_id, record.generation) if record is not None else None
            if plan is not None and job.kill_drill:
                redone += sum(max(0, item.attempts - 1) for item in ledger.items(plan))
        registries = {id(job.lane.registry): job.lane.registry for job in self.jobs}.values()
        stats = [registry.stats() for registry in registries]
        locked = sum(1 for d in details.values() if d["State"] == "Locked")
        in_flight, longest = self.invocations()
        to_final = [
            (parse_utc(d["FinishedUtc"]) - parse_utc(d["CreatedUtc"])).total_seconds()
            for d in details.values()
            if d.get("FinishedUtc")
        ]
        return {
            "kills": self.kills,
            "jobs": len(self.jobs),
            "jobs_final": len(final),
            "lost_jobs": len(self.jobs) - len(final) + locked,
            "files_expected": sum(j.expected_files for j in self.jobs),
            "files_delivered": delivered,
            "duplicate_files": max(duplicates, sum(int(s.get("DuplicateCompletions", 0)) for s in stats)),
            "stuck_locks": locked + sum(lane.records().count_active() for lane in self.lanes.values()),
            "poison_messages": self.unexpected_poison(),
            "items_redone": redone,
            "max_items_in_flight_per_host": in_flight,
            "longest_execution_seconds": round(longest, 1),
            "bytes_uploaded": sum(int(s.get("BytesReceived", 0)) for s in stats),
            "bytes_delivered": bytes_delivered,
            "vms_leftovers": self.vms_leftovers(),
            "false_lost": self.lost_watch.false_lost(),
            "relock_cycles_max": max((len(history) for history in locks.values()), default=0),
            "stuck_plans": sum(self.stuck_plans(lane) for lane in self.lanes.values()),
            "seconds_to_final_max": round(max(to_final, default=0.0), 1),
            "scenarios": {name: self.outcomes[name].to_json() for name in self.scenario_names},
            "seconds": round(seconds, 1),
        }

    def unexpected_poison(self) -> int:
        return sum(
            1
            for lane in self.lanes.values()
            for message in lane.poison_messages()
            if str(message.get("JobId")) not in self.expected_poison
        )

    @staticmethod
    def stuck_plans(lane: Lane) -> int:
        """Plans left unfinished by a lock that is still the job's current one, and plans still Completing."""
        stuck = 0
        records = lane.records()
        records.ensure_table()
        for plan in lane.table().query_entities("RowKey ge 'plan-' and RowKey lt 'plan.'"):
            state = plan.get("State")
            if state == "Done":
                continue
            record = records.get(plan["PartitionKey"])
            current = record is not None and plan["RowKey"] == f"plan-{record.generation}"
            if state == "Completing" or (current and record is not None and not record.terminal):
                stuck += 1
                print(
                    f"  stuck plan in lane {lane.name}: job {plan['PartitionKey'][:8]} {plan['RowKey']} {state}, "
                    f"record {record.state if record else None} ({'current' if current else 'older'} lock)"
                )
        return stuck

    def invocations(self) -> tuple[int, float]:
        """From the hosts' own logs: most process_job runs at once in one process, longest run."""
        logs = [path for lane in self.lanes.values() for slot in lane.hosts for path in slot.logs]
        stats = invocation_stats(logs, "process_job")
        return stats.most_at_once, stats.longest_seconds


def targets_missed(result: dict[str, Any], max_seconds: float) -> list[str]:
    zero = ("lost_jobs", "duplicate_files", "stuck_locks", "poison_messages", "vms_leftovers", "false_lost")
    missed = [name for name in (*zero, "stuck_plans") if result[name]]
    if result["jobs_final"] != result["jobs"]:
        missed.append("jobs_final")
    if result["items_redone"] > result["kills"] * max(1, result["max_items_in_flight_per_host"]):
        missed.append("items_redone")
    missed += [f"scenario {name}" for name, outcome in result["scenarios"].items() if not outcome["passed"]]
    if result["seconds"] >= max_seconds:
        missed.append("seconds")
    return missed


def run(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="drill-"))
    with LocalStack(state_dir=None) as stack:
        drill = Drill(args, stack, workdir)
        scenarios = ", ".join(drill.scenario_names) or "none"
        print(f"Drill: {drill.kill_target} kills; scenarios: {scenarios}; host logs in {workdir}", flush=True)
        result = drill.run()
    missed = targets_missed(result, args.max_seconds)
    print("targets met" if not missed else f"TARGETS MISSED: {', '.join(missed)}")
    print(json.dumps(result))
    return 1 if missed else 0
