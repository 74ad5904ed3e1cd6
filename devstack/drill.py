"""`make drill`: a resilience drill — host processes killed at random while real work is in flight.

Starts the local stack and two Functions host processes, posts a mix that includes a 3-camera, 2-hour
media request (hundreds of MB per camera) and a 1,000-camera discovery, then, while work is in flight,
kills a random host (SIGKILL: no cleanup) at random moments and starts it again, injects Registry
503/429 answers and VMS mid-stream drops, waits until every job is final, and prints as its last line
one JSON object. Exits non-zero when a target is missed:

    lost_jobs = duplicate_files = stuck_locks = poison_messages = 0, jobs_final = jobs,
    items_redone <= kills * max_items_in_flight_per_host, seconds < 300 (on the full drill).

The queue's message visibility is shortened (a killed host's messages reappear after a few seconds
instead of the real host's 10 minutes) so the drill fits its time.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from devstack.agent_env import agent_settings
from devstack.funchost.logs import invocation_stats
from devstack.funchost.process import HostProcess
from devstack.stack import REPO_ROOT, LocalStack
from shared.agent.jobs.media import segments
from shared.agent.locks.records import LockRecords
from shared.agent.work.ledger import Ledger
from shared.secrets.lock_tokens import lock_token_sealer
from shared.settings import AgentSettings
from shared.storage import queue_client, table_client
from shared.vms.base import Interval

FINAL = frozenset({"Completed", "PartiallyCompleted", "Failed", "Canceled"})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kills", type=int, default=20, help="host kills to inflict (20)")
    parser.add_argument("--cameras", type=int, default=3, help="cameras in the big media request (3)")
    parser.add_argument("--hours", type=float, default=2.0, help="window of the big media request (2 h)")
    parser.add_argument("--bitrate-kbps", type=int, default=450, help="simulated bitrate (450 kbit/s ≈ 405 MB per 2 h)")
    parser.add_argument("--discovery-cameras", type=int, default=1000, help="cameras in the account (1000)")
    parser.add_argument("--extra-media", type=int, default=4, help="smaller media requests besides the big one (4)")
    parser.add_argument("--thumbnail-cameras", type=int, default=60, help="cameras in the thumbnail job (60)")
    parser.add_argument("--hosts", type=int, default=2, help="Functions host processes (2)")
    parser.add_argument("--max-seconds", type=float, default=300, help="target and give-up time (300 s)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")


@dataclass
class DrillJob:
    job_id: str
    kind: str
    expected_files: int
    label: str


@dataclass
class HostSlot:
    """One scaled-out instance: the current process and every log it wrote (one per start)."""

    number: int
    process: HostProcess | None = None
    logs: list[Path] = field(default_factory=list)


class Drill:
    def __init__(self, args: argparse.Namespace, stack: LocalStack, workdir: Path) -> None:
        self.args, self.stack, self.workdir = args, stack, workdir
        self.rng = random.Random(args.seed)
        self.vms = stack.een.control
        self.settings = agent_settings(
            stack,
            unique=True,
            POLL_SCHEDULE="*/1 * * * * *",
            RENEW_SCHEDULE="*/2 * * * * *",
            MAX_IN_FLIGHT_JOBS="20",
        )
        self.hosts = [HostSlot(n + 1) for n in range(args.hosts)]
        self.kills = 0
        self.jobs: list[DrillJob] = []

    # ---- set-up -----------------------------------------------------------------------------------

    def post_jobs(self) -> None:
        args, vms, sim = self.args, self.vms, self.stack.sim
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
        job = sim.create_job("thumbnail", {"CameraIds": thumbs})
        self.jobs.append(DrillJob(job["Id"], "thumbnail", len(thumbs), f"{len(thumbs)} cameras"))
        job = sim.create_job("discovery", {})
        self.jobs.append(DrillJob(job["Id"], "discovery", 1, f"{len(all_cameras)} cameras"))

    def _media(self, cameras: list[str], start: datetime, end: datetime, label: str) -> None:
        windows = [{"CameraId": c, "StartTimeUtc": start.isoformat(), "EndTimeUtc": end.isoformat()} for c in cameras]
        expected = len(cameras) * len(segments(Interval(start, end), timedelta(minutes=15)))
        job = self.stack.sim.create_job("mediarequest", {"Cameras": windows})
        self.jobs.append(DrillJob(job["Id"], "mediarequest", expected, f"{len(cameras)} cameras, {label}"))

    # ---- hosts ----------------------------------------------------------------------------------

    def start_host(self, slot: HostSlot) -> None:
        log_path = self.workdir / f"host-{slot.number}-{len(slot.logs) + 1}.log"
        slot.logs.append(log_path)
        slot.process = HostProcess(
            REPO_ROOT,
            self.settings,
            instance_id=f"drill-host-{slot.number}-{len(slot.logs)}",
            host_id="drill",
            log_path=log_path,
            max_polling_interval=0.5,
            message_visibility=6,
            lease_duration=15,
            lease_retry_interval=1,
        ).start()

    def strike(self) -> None:
        """Kill a random host (SIGKILL) and start it again; now and then a Registry or VMS fault too.

        Runs on the main thread: host processes started here die with the drill if it is interrupted."""
        slot = self.rng.choice(self.hosts)
        if slot.process is not None:
            slot.process.kill()
            self.kills += 1
        self.start_host(slot)
        if self.kills % 4 == 1:
            operation = self.rng.choice(["initialize_upload", "complete_media", "renew", "progress", "lock"])
            self.stack.sim.inject_fault(operation, self.rng.choice([503, 429]), count=2, retry_after=1)
        if self.kills % 3 == 0:
            self.vms.drop_downloads(after_bytes=self.rng.randint(1, 40) * 1_000_000, count=2)

    # ---- the run --------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        started = time.monotonic()
        self.post_jobs()
        for slot in self.hosts:
            self.start_host(slot)
        deadline = started + self.args.max_seconds * 2
        next_strike = time.monotonic() + self.rng.uniform(1.0, 3.0)
        try:
            while time.monotonic() < deadline:
                if self.kills < self.args.kills and time.monotonic() >= next_strike:
                    self.strike()
                    next_strike = time.monotonic() + self.rng.uniform(1.0, 3.0)
                states = {j["Id"]: _state(j) for j in self.stack.sim.jobs()}
                if self.kills >= self.args.kills and all(states.get(j.job_id) in FINAL for j in self.jobs):
                    break
                time.sleep(0.3)
        finally:
            for slot in self.hosts:
                if slot.process is not None:
                    slot.process.stop(timeout=10)
        return self.measure(time.monotonic() - started)

    def measure(self, seconds: float) -> dict[str, Any]:
        sim = self.stack.sim
        details = {job.job_id: sim.job(job.job_id) for job in self.jobs}
        final = [j for j in self.jobs if _state(details[j.job_id]) in FINAL]
        storage = AgentSettings.from_env(self.settings).storage
        table = table_client(storage, self.settings["LOCKS_TABLE_NAME"])
        sealer = lock_token_sealer(AgentSettings.from_env(self.settings).connection)
        records, ledger = LockRecords(table, sealer=sealer), Ledger(table)
        duplicates = delivered = bytes_delivered = redone = 0
        for job in self.jobs:
            completed = [f for f in details[job.job_id]["Files"] if f["Completed"]]
            names = Counter(f["FileName"] for f in completed)
            duplicates += sum(count - 1 for count in names.values())
            delivered += len(completed)
            bytes_delivered += sum((f.get("Verification") or {}).get("Size") or 0 for f in completed)
            record = records.get(job.job_id)
            plan = ledger.get_plan(job.job_id, record.generation) if record is not None else None
            if plan is not None:
                redone += sum(max(0, item.attempts - 1) for item in ledger.items(plan))
        stuck = sum(1 for d in details.values() if d["State"] == "Locked") + sum(1 for _ in records.active())
        in_flight, longest = self.invocations()
        stats = _registry_stats(sim)
        return {
            "kills": self.kills,
            "jobs": len(self.jobs),
            "jobs_final": len(final),
            "lost_jobs": len(self.jobs) - len(final) + sum(1 for d in details.values() if d["State"] == "Locked"),
            "files_expected": sum(j.expected_files for j in self.jobs),
            "files_delivered": delivered,
            "duplicate_files": max(duplicates, int(stats.get("DuplicateCompletions", 0))),
            "stuck_locks": stuck,
            "poison_messages": self.poison_count(storage),
            "items_redone": redone,
            "max_items_in_flight_per_host": in_flight,
            "longest_execution_seconds": round(longest, 1),
            "bytes_uploaded": int(stats.get("BytesReceived", 0)),
            "bytes_delivered": bytes_delivered,
            "seconds": round(seconds, 1),
        }

    def invocations(self) -> tuple[int, float]:
        """From the hosts' own logs: most process_job runs at once in one process, longest run."""
        stats = invocation_stats([path for slot in self.hosts for path in slot.logs], "process_job")
        return stats.most_at_once, stats.longest_seconds

    def poison_count(self, storage) -> int:
        poison = queue_client(storage, self.settings["JOBS_QUEUE_NAME"] + "-poison")
        try:
            return poison.get_queue_properties().approximate_message_count or 0
        except ResourceNotFoundError:
            return 0


def _state(detail: dict[str, Any]) -> str:
    return detail.get("CompletionState") or detail["State"]


def _registry_stats(sim) -> dict[str, Any]:
    stats = getattr(sim, "stats", None)
    return stats() if callable(stats) else {}


def targets_missed(result: dict[str, Any], max_seconds: float) -> list[str]:
    missed = [name for name in ("lost_jobs", "duplicate_files", "stuck_locks", "poison_messages") if result[name]]
    if result["jobs_final"] != result["jobs"]:
        missed.append("jobs_final")
    if result["items_redone"] > result["kills"] * max(1, result["max_items_in_flight_per_host"]):
        missed.append("items_redone")
    if result["seconds"] >= max_seconds:
        missed.append("seconds")
    return missed


def run(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="drill-"))
    with LocalStack(state_dir=None) as stack:
        drill = Drill(args, stack, workdir)
        print(f"Drill: {args.kills} kills across {args.hosts} hosts; host logs in {workdir}", flush=True)
        result = drill.run()
        for job in drill.jobs:
            detail = stack.sim.job(job.job_id)
            done = sum(1 for f in detail["Files"] if f["Completed"])
            print(
                f"  {job.job_id[:8]} {job.kind:<12} {_state(detail):<19} {done:>4}/{job.expected_files:<4} {job.label}"
            )
    missed = targets_missed(result, args.max_seconds)
    print("targets met" if not missed else f"TARGETS MISSED: {', '.join(missed)}")
    print(json.dumps(result))
    return 1 if missed else 0
