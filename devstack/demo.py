"""The protocol demo (`make demo`): our Registry client and encrypted upload, end to end, on the local stack.

It starts Azurite and the Registry simulator, posts a mix of jobs, then acts as the agent: list → lock →
InitializeUpload → encrypt and upload → Complete* (the simulator decrypts and verifies every byte) →
complete the job. The last line of output is one JSON object summarising the run.

Until the VMS adapters and the function app land, content comes from `sample_media` instead of a VMS.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from devstack.sample_media import SAMPLE_JPEG, MiB, discovery_document, mp4_like_stream
from devstack.stack import DEFAULT_STATE_DIR, LocalStack
from shared.registry.client import RegistryClient
from shared.registry.connection_file import parse_connection_file
from shared.registry.contract import Job, MediaRequestParameters, ThumbnailParameters
from shared.registry.errors import LockConflict, RegistryError
from shared.upload.errors import UploadError
from shared.upload.target import UploadTargetPolicy
from shared.upload.uploader import EncryptedBlobUploader

AGENT_ID = "demo-agent"
_PRINT_LOCK = threading.Lock()


@dataclass
class Outcome:
    job_id: str
    job_type: str
    state: str = "Skipped"
    files: int = 0
    bytes: int = 0
    detail: str = ""
    seconds: float = 0.0


@dataclass
class Agent:
    """A minimal single-process agent built only from the `shared` package."""

    client: RegistryClient
    uploader: EncryptedBlobUploader
    media_bytes: int
    log: list[str] = field(default_factory=list)

    def process(self, job: Job) -> Outcome:
        outcome = Outcome(job.id, job.type)
        started = time.monotonic()
        try:
            lock = self.client.lock(job.id)
        except LockConflict:
            outcome.detail = "locked by another agent"
            return outcome
        try:
            handler = {"mediarequest": self._media, "thumbnail": self._thumbnails, "discovery": self._discovery}
            handler[job.type](job, lock.lock_token, outcome)
            self.client.complete(job.id, lock.lock_token, "Completed")
            outcome.state = "Completed"
        except (RegistryError, UploadError) as exc:
            outcome.state, outcome.detail = "Released", str(exc)
            try:
                self.client.release(job.id, lock.lock_token)
            except RegistryError as release_error:
                outcome.detail += f"; release failed: {release_error}"
        outcome.seconds = time.monotonic() - started
        return outcome

    def _upload(self, job: Job, token: str, name: str, content_type: str, source, size_hint: int | None):
        ticket = self.client.initialize_upload(job.id, token, name, content_type)
        return ticket, self.uploader.upload(
            ticket.uri, ticket.json_web_key, source, content_type=content_type, size_hint=size_hint
        )

    def _done(self, job: Job, token: str, outcome: Outcome, total: int, label: str, size: int) -> None:
        outcome.files += 1
        outcome.bytes += size
        self.client.report_progress(job.id, token, outcome.files, total)
        with _PRINT_LOCK:
            print(f"  {job.id[:8]}  {job.type:<12} {label:<28} {_size(size):>10}  verified by the Registry", flush=True)

    def _media(self, job: Job, token: str, outcome: Outcome) -> None:
        parameters = MediaRequestParameters.model_validate(job.parameters)
        for window in parameters.cameras:
            name = f"{window.camera_id}_{_stamp(window.start_time_utc)}_{_stamp(window.end_time_utc)}.mp4"
            source = mp4_like_stream(f"{job.id}/{window.camera_id}", self.media_bytes)
            ticket, result = self._upload(job, token, name, "video/mp4", source, self.media_bytes)
            self.client.complete_media(
                job.id,
                token,
                ticket.file_id,
                camera_id=window.camera_id,
                start=window.start_time_utc,
                end=window.end_time_utc,
                size=result.size,
                sha256=result.sha256,
            )
            self._done(job, token, outcome, len(parameters.cameras), window.camera_id, result.size)

    def _thumbnails(self, job: Job, token: str, outcome: Outcome) -> None:
        parameters = ThumbnailParameters.model_validate(job.parameters)
        for camera_id in parameters.camera_ids:
            ticket, result = self._upload(job, token, f"{camera_id}.jpg", "image/jpeg", [SAMPLE_JPEG], None)
            self.client.complete_thumbnail(
                job.id,
                token,
                ticket.file_id,
                camera_id=camera_id,
                captured=datetime.now().astimezone(),
                size=result.size,
                sha256=result.sha256,
            )
            self._done(job, token, outcome, len(parameters.camera_ids), camera_id, result.size)

    def _discovery(self, job: Job, token: str, outcome: Outcome) -> None:
        cameras = [f"cam-{n:03d}" for n in range(1, 26)]
        document = discovery_document(cameras)
        ticket, result = self._upload(job, token, "discovery.json", "application/json", [document], None)
        self.client.complete_discovery(
            job.id, token, ticket.file_id, device_count=len(cameras), size=result.size, sha256=result.sha256
        )
        self._done(job, token, outcome, 1, f"{len(cameras)} devices", result.size)


def _size(n: int) -> str:
    return f"{n / MiB:.1f} MiB" if n >= MiB else f"{n / 1024:.1f} KiB"


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    state_dir = None if args.no_state else Path(args.state_dir)
    with LocalStack(state_dir) as stack:
        print(f"Local stack up: Registry simulator {stack.registry_url}, Azurite blob {stack.blob_endpoint}")
        if state_dir is not None:
            print(f"State (connection file, Registry file key to decrypt uploads) in {state_dir}/")
        for job_type, count in (
            ("discovery", args.discovery),
            ("thumbnail", args.thumbnails),
            ("mediarequest", args.media),
        ):
            if count:
                stack.sim.create_jobs(job_type, count=count)
        agent = Agent(
            RegistryClient(
                parse_connection_file(stack.connection_file_json), AGENT_ID, agent_service_url=stack.agent_service_url
            ),
            EncryptedBlobUploader(UploadTargetPolicy(allow_http_loopback=True)),
            media_bytes=int(args.media_mib * MiB),
        )
        jobs = agent.client.list_jobs()
        print(f"The Registry offers {len(jobs)} job(s); processing with {args.workers} worker(s):", flush=True)
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            outcomes = list(pool.map(agent.process, jobs))
        files = [f for job in stack.sim.jobs() for f in stack.sim.job(job["Id"])["Files"]]
    return report(outcomes, files, time.monotonic() - started)


def report(outcomes: list[Outcome], files: list[dict], seconds: float) -> int:
    print(f"\n{'job':<10}{'type':<14}{'state':<20}{'files':>6}{'MiB':>10}{'seconds':>9}  detail")
    for o in outcomes:
        print(
            f"{o.job_id[:8]:<10}{o.job_type:<14}{o.state:<20}{o.files:>6}{o.bytes / MiB:>10.2f}"
            f"{o.seconds:>9.2f}  {o.detail[:80]}"
        )
    verified = sum(1 for f in files if (f.get("Verification") or {}).get("Ok") is True)
    rejected = sum(1 for f in files if (f.get("Verification") or {}).get("Ok") is False)
    states = [o.state for o in outcomes]
    summary = {
        "jobs": len(outcomes),
        "completed": states.count("Completed"),
        "partially_completed": states.count("PartiallyCompleted"),
        "failed": states.count("Failed"),
        "canceled": states.count("Canceled"),
        "released": states.count("Released"),
        "files": len(files),
        "files_verified": verified,
        "files_rejected": rejected,
        "bytes": sum(o.bytes for o in outcomes),
        "seconds": round(seconds, 2),
    }
    ok = rejected == 0 and summary["completed"] == len(outcomes)
    print("\nAll jobs completed and every file verified." if ok else "\nSOME JOBS OR FILES FAILED: see above.")
    print(json.dumps(summary))
    return 0 if ok else 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--media", type=int, default=3, help="media request jobs to post (default 3)")
    parser.add_argument("--thumbnails", type=int, default=3, help="thumbnail jobs to post (default 3)")
    parser.add_argument("--discovery", type=int, default=1, help="discovery jobs to post (default 1)")
    parser.add_argument("--media-mib", type=float, default=24, help="MiB of video per camera (default 24)")
    parser.add_argument("--workers", type=int, default=4, help="jobs processed at once (default 4)")
    parser.add_argument("--state-dir", default=str(DEFAULT_STATE_DIR), help="where the stack writes its state")
    parser.add_argument("--no-state", action="store_true", help="write nothing to disk")


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description=__doc__)
    add_arguments(cli)
    sys.exit(run(cli.parse_args()))
