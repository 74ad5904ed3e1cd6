"""`make demo`: the whole agent, unattended, on the local stack.

Starts Azurite, the Registry simulator and the VMS simulator (EEN's direct route by default,
`--vms een-export` for its export route, `--vms rhombus`, `--vms verkada`), then
one or more local Functions hosts running poll_jobs, process_job and renew_locks exactly as deployed.
Posts a realistic mix of jobs (discovery; thumbnails; media requests of one to three cameras with
windows up to 2 h, a recording gap, a camera without footage, an unknown camera), shows live progress
bars per job (work items and bytes, read from the agent's ledger), waits until every job is final,
prints a summary table and, as the last line, one JSON object. Exits non-zero if the Registry rejected
any file or a job ended in a state other than the one planned.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from devstack.agent_env import agent_settings
from devstack.funchost.process import HostProcess
from devstack.progress_view import ProgressView
from devstack.scenario import VMS_CHOICES, PlannedJob, configure_vms, create_cameras, plan
from devstack.stack import DEFAULT_STATE_DIR, REPO_ROOT, LocalStack
from devstack.vms_sim import EenEndpoints, RhombusEndpoints, VerkadaEndpoints
from shared.agent.locks.records import LockRecords
from shared.agent.work.ledger import Ledger
from shared.secrets.lock_tokens import lock_token_sealer
from shared.settings import AgentSettings
from shared.storage import table_client

FINAL = frozenset({"Completed", "PartiallyCompleted", "Failed", "Canceled"})
MiB = 1024 * 1024


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vms", choices=tuple(VMS_CHOICES), default="een", help="VMS and video route (een: direct)")
    parser.add_argument("--media", type=int, default=6, help="media request jobs (6)")
    parser.add_argument("--thumbnails", type=int, default=4, help="thumbnail jobs (4)")
    parser.add_argument("--discovery", type=int, default=1, help="discovery jobs (1)")
    parser.add_argument("--max-window-minutes", type=int, default=120, help="longest video window (120)")
    parser.add_argument("--bitrate-kbps", type=int, default=200, help="simulated video bitrate (200 kbit/s)")
    parser.add_argument("--hosts", type=int, default=1, help="Functions host processes, as scaled-out instances (1)")
    parser.add_argument("--timeout", type=float, default=170, help="give up after this many seconds (170)")
    parser.add_argument("--state-dir", default=str(DEFAULT_STATE_DIR), help="where the stack writes its state")
    parser.add_argument("--no-state", action="store_true", help="write nothing to disk")


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    state_dir = None if args.no_state else Path(args.state_dir)
    log_dir = state_dir or Path(tempfile.mkdtemp(prefix="demo-"))
    profile, route_settings = VMS_CHOICES[args.vms]
    with LocalStack(state_dir) as stack:
        endpoints: dict[str, EenEndpoints | RhombusEndpoints | VerkadaEndpoints] = {
            "een": stack.een,
            "rhombus": stack.rhombus,
            "verkada": stack.verkada,
        }
        vms = endpoints[profile].control
        configure_vms(vms, profile, args.bitrate_kbps)
        cameras = create_cameras(vms)
        jobs = plan(
            cameras,
            profile,
            media=args.media,
            thumbnails=args.thumbnails,
            discovery=args.discovery,
            max_window_minutes=args.max_window_minutes,
        )
        settings = agent_settings(stack, vms=profile, unique=False, **route_settings)
        print(f"Local stack up: Registry {stack.registry_url}, VMS {args.vms}, Azurite {stack.blob_endpoint}")
        hosts = [
            HostProcess(
                REPO_ROOT,
                settings,
                instance_id=f"demo-host-{n + 1}",
                log_path=log_dir / f"host-{n + 1}.log",
                max_polling_interval=1,
                message_visibility=60,
            )
            for n in range(args.hosts)
        ]
        try:
            for host in hosts:
                host.start()
            print(
                f"{len(hosts)} Functions host(s) running poll_jobs, process_job, renew_locks "
                f"(logs: {log_dir}/host-*.log)"
            )
            for job in jobs:
                job.job_id = stack.sim.create_job(job.job_type, job.parameters)["Id"]
            print(f"Posted {len(jobs)} jobs to the Registry; live progress:\n", flush=True)
            finished = watch(stack, jobs, settings, started, args.timeout)
        finally:
            for host in hosts:
                host.stop()
        details = {job.job_id: stack.sim.job(job.job_id) for job in jobs}
        paths = download_paths(vms.request_summary())
    return report(jobs, details, time.monotonic() - started, finished, paths)


VIDEO_PATHS = {"media_stream": "streamed", "download_file": "exported", "download_clip": "exported"}


def download_paths(summary: dict) -> dict[str, int]:
    """Video files fetched per path, from the VMS simulator's log (whole downloads, not Range resumes):
    EEN's direct route streams recordings from their mp4Url; its export route and Rhombus download exports."""
    counts = {"streamed": 0, "exported": 0}
    for operation, count in summary.get("OkByOperation", {}).items():
        if operation in VIDEO_PATHS:
            counts[VIDEO_PATHS[operation]] += count
    return counts


def watch(stack: LocalStack, jobs: list[PlannedJob], settings: dict[str, str], started: float, timeout: float) -> bool:
    """Live progress bars until every job is final (True) or the timeout (False)."""
    table = table_client(AgentSettings.from_env(settings).storage, settings["LOCKS_TABLE_NAME"])
    records = LockRecords(table, sealer=lock_token_sealer(AgentSettings.from_env(settings).connection))
    with ProgressView(records, Ledger(table)) as view:
        for job in jobs:
            view.add(job.job_id, job.job_type, job.label)
        while time.monotonic() - started < timeout:
            states = {j["Id"]: j.get("CompletionState") or j["State"] for j in stack.sim.jobs()}
            view.update(states)
            if all(states[j.job_id] in FINAL for j in jobs):
                return True
            time.sleep(0.5)
    return False


def report(
    jobs: list[PlannedJob], details: dict[str, dict], seconds: float, finished: bool, paths: dict[str, int]
) -> int:
    print(f"\n{'job':<10}{'type':<14}{'expected':<20}{'state':<20}{'files':>6}{'MiB':>9}  scenario")
    files = verified = rejected = size = released = 0
    unexpected = []
    states: list[str] = []
    for job in jobs:
        detail = details[job.job_id]
        state = detail["State"]
        states.append(state)
        job_files = detail["Files"]
        good = [f for f in job_files if (f.get("Verification") or {}).get("Ok") is True]
        bad = [f for f in job_files if (f.get("Verification") or {}).get("Ok") is False]
        files, verified, rejected = files + len(job_files), verified + len(good), rejected + len(bad)
        job_bytes = sum(f["Verification"]["Size"] or 0 for f in good)
        size += job_bytes
        released += sum(1 for h in detail["History"] if h["Operation"] == "release" and h["Status"] == 204)
        if state != job.expected:
            unexpected.append(job.job_id)
        flag = "" if state == job.expected else "  <-- unexpected"
        print(
            f"{job.job_id[:8]:<10}{job.job_type:<14}{job.expected:<20}{state:<20}{len(good):>6}"
            f"{job_bytes / MiB:>9.1f}  {job.label}{flag}"
        )
    summary = {
        "jobs": len(jobs),
        "completed": states.count("Completed"),
        "partially_completed": states.count("PartiallyCompleted"),
        "failed": states.count("Failed"),
        "canceled": states.count("Canceled"),
        "released": released,
        "files": files,
        "files_verified": verified,
        "files_rejected": rejected,
        "bytes": size,
        "video_files_streamed": paths["streamed"],
        "video_files_exported": paths["exported"],
        "seconds": round(seconds, 1),
    }
    ok = finished and not unexpected and rejected == 0
    if not finished:
        print("\nTIMED OUT: some jobs were still in flight.")
    print(
        "\nEvery job reached its planned state and every file verified."
        if ok
        else f"\nPROBLEMS: {len(unexpected)} job(s) in an unexpected state, {rejected} file(s) rejected."
    )
    print(json.dumps(summary))
    return 0 if ok else 1
