"""A small client for the simulator's /_sim control API, for tests and demos."""

from __future__ import annotations

import time
from typing import Any

import requests


class SimulatorControlError(RuntimeError):
    """The control API refused a call."""


class ControlClient:
    """Calls a simulator's /_sim control API; shared by the Registry and VMS simulators' clients."""

    def __init__(self, base_url: str, *, timeout: float = 30.0, session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._session = session or requests.Session()

    def _call(self, method: str, path: str, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        response = self._session.request(
            method, f"{self.base_url}/_sim{path}", json=json, params=params, timeout=self.timeout
        )
        if response.status_code >= 400:
            raise SimulatorControlError(f"{method} /_sim{path} answered {response.status_code}: {response.text}")
        return response.json() if response.content else None

    def info(self) -> dict[str, Any]:
        return self._call("GET", "/info")

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        return self._call("GET", "/requests", params={"since": since})

    def inject_latency(self, operation: str, latency_ms: int) -> dict[str, Any]:
        return self._call("POST", "/faults", {"Kind": "Latency", "Operation": operation, "LatencyMs": latency_ms})

    def faults(self) -> dict[str, Any]:
        return self._call("GET", "/faults")

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        return self._call("POST", "/clock/advance", {"Seconds": seconds})

    def set_clock_offset(self, seconds: float) -> dict[str, Any]:
        """The simulator's clock runs `seconds` ahead of real time from now on (negative: behind)."""
        return self._call("POST", "/clock/offset", {"Seconds": seconds})

    def clock(self) -> dict[str, Any]:
        return self._call("GET", "/clock")

    def config(self) -> dict[str, Any]:
        return self._call("GET", "/config")

    def reset(self) -> None:
        """Back to the start state: no jobs, faults or log, real time (VMS: seeded cameras, EEN's initial grant)."""
        self._call("POST", "/reset")


class SimulatorControl(ControlClient):
    def create_jobs(
        self,
        job_type: str,
        parameters: Any = None,
        count: int = 1,
        camera_ids: list[str] | None = None,
        *,
        verify_content: bool = True,
        agent_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """With verify_content=False the Registry checks only decryption, size and SHA-256 of the job's files
        (for tests that upload arbitrary bytes); by default it also checks that each file is exactly what its
        Complete* call reported (camera, window, capture time, device count). With agent_id, the jobs are
        offered to that agent only (others do not see them, and their lock answers 409)."""
        body: dict[str, Any] = {"Type": job_type, "Count": count, "VerifyContent": verify_content}
        if agent_id is not None:
            body["AgentId"] = agent_id
        if parameters is not None:
            body["Parameters"] = parameters
        if camera_ids is not None:
            body["CameraIds"] = camera_ids
        return self._call("POST", "/jobs", body)

    def create_job(
        self, job_type: str, parameters: Any = None, *, verify_content: bool = True, agent_id: str | None = None
    ) -> dict[str, Any]:
        return self.create_jobs(job_type, parameters, verify_content=verify_content, agent_id=agent_id)[0]

    def jobs(self) -> list[dict[str, Any]]:
        return self._call("GET", "/jobs")

    def job(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/jobs/{job_id}")

    def inject_fault(
        self,
        operation: str,
        status: int,
        *,
        count: int = 1,
        retry_after: int | None = None,
        detail: str | None = None,
        after_processing: bool = False,
    ) -> dict[str, Any]:
        """The next `count` calls of `operation` answer `status`.

        With after_processing the call still takes effect: only its response is lost."""
        body: dict[str, Any] = {
            "Kind": "Status", "Operation": operation, "Status": status, "Count": count,
            "AfterProcessing": after_processing,
        }  # fmt: skip
        if retry_after is not None:
            body["RetryAfter"] = retry_after
        if detail is not None:
            body["Detail"] = detail
        return self._call("POST", "/faults", body)

    def inject_expired_sas(self, count: int = 1) -> dict[str, Any]:
        return self._call("POST", "/faults", {"Kind": "ExpiredSas", "Count": count})

    def expire_lock(self, job_id: str) -> None:
        self._call("POST", f"/jobs/{job_id}/expire-lock")

    def lock_history(self, job_id: str) -> list[dict[str, Any]]:
        """Every lock the job had, oldest first: LockToken, AgentId, LockedUtc, EndedUtc, LockedHostUtc,
        EndedHostUtc, Ending (released, completed, canceled, expired, taken over; None while held)."""
        return self._call("GET", f"/jobs/{job_id}/locks")

    def configure(
        self,
        *,
        lock_duration_seconds: int | None = None,
        token_lifetime_seconds: int | None = None,
        sas_ttl_seconds: int | None = None,
    ) -> dict[str, int]:
        changes = {
            "LockDurationSeconds": lock_duration_seconds,
            "TokenLifetimeSeconds": token_lifetime_seconds,
            "SasTtlSeconds": sas_ttl_seconds,
        }
        return self._call("POST", "/config", {k: v for k, v in changes.items() if v is not None})

    def offer(self, job_id: str, agent_id: str | None) -> None:
        """The job is offered to `agent_id` only from now on (None: to every agent)."""
        self._call("POST", f"/jobs/{job_id}/offer", {"AgentId": agent_id})

    def lose_lock(self, job_id: str) -> str:
        """Another agent takes the job's lock now: the holder's later calls answer 409."""
        return self._call("POST", f"/jobs/{job_id}/lose-lock")["Outcome"]

    # -- response transforms ------------------------------------------------------------------

    def add_transform(
        self,
        operation: str,
        *,
        job_id: str | None = None,
        nth: int = 1,
        count: int | None = None,
        every: bool = False,
        status: int | None = None,
        processed: bool = True,
        rename: dict[str, str] | None = None,
        drop: list[str] | None = None,
        body: str | None = None,
        truncate_at: int | None = None,
        content_type: str | None = None,
        headers: dict[str, str | None] | None = None,
    ) -> dict[str, Any]:
        """Reshape the answer to `operation` (optionally for one job) on its `nth` call from now, then
        `count` times (default once) or on `every` later call. `rename`/`drop` take field paths
        (`Parameters.Cameras.CameraId`, `0.Id`, `**.LockToken`); `body` is Html, Truncated, Empty or CutOff;
        `headers` values are sent as given (None removes one); `processed=False` skips the call itself
        and answers `status`. Returns the armed transform (with its Id)."""
        spec: dict[str, Any] = {"Operation": operation, "Nth": nth, "Processed": processed}
        spec.update(_trigger_count(count, every))
        optional = {
            "JobId": job_id, "Status": status, "Rename": rename, "Drop": drop, "Body": body,
            "TruncateAt": truncate_at, "ContentType": content_type, "Headers": headers,
        }  # fmt: skip
        spec.update({name: value for name, value in optional.items() if value is not None})
        return self._call("POST", "/transforms", spec)

    def transforms(self) -> list[dict[str, Any]]:
        return self._call("GET", "/transforms")

    def clear_transforms(self) -> None:
        self._call("DELETE", "/transforms")

    def remove_transform(self, transform_id: int) -> None:
        self._call("DELETE", f"/transforms/{transform_id}")

    # -- faults at a chosen step ----------------------------------------------------------------

    def add_step_fault(
        self,
        step: str,
        action: str,
        *,
        job_id: str | None = None,
        file_name: str | None = None,
        nth: int = 1,
        count: int | None = None,
        every: bool = False,
        status: int | None = None,
        error_code: str | None = None,
        headers: dict[str, str | None] | None = None,
        after_processing: bool = False,
        hold_seconds: float | None = None,
        detail: str | None = None,
    ) -> dict[str, Any]:
        """`action` (LoseLock, Status, Hold, Drop) at the `nth` call of `step`: a Registry operation, or a
        storage step (PutBlock, PutBlockList, PutBlob; numbered per file) of the uploads of `job_id` and
        files matching `file_name` (a glob). Arm storage faults before the file's InitializeUpload: only
        then does its ticket point at the upload proxy. Returns the armed fault (with its Id)."""
        spec: dict[str, Any] = {"Step": step, "Action": action, "Nth": nth, "AfterProcessing": after_processing}
        spec.update(_trigger_count(count, every))
        optional = {
            "JobId": job_id, "FileName": file_name, "Status": status, "ErrorCode": error_code,
            "Headers": headers, "HoldSeconds": hold_seconds, "Detail": detail,
        }  # fmt: skip
        spec.update({name: value for name, value in optional.items() if value is not None})
        return self._call("POST", "/step-faults", spec)

    def lose_lock_after_put_block(self, job_id: str, blocks: int, *, file_name: str | None = None) -> dict[str, Any]:
        """The lock is lost once the `blocks`-th Put Block of a file is stored: for a file of that many
        blocks, after its last Put Block and before its Put Block List could be sent."""
        return self.add_step_fault(
            "PutBlock", "LoseLock", job_id=job_id, file_name=file_name, nth=blocks, after_processing=True
        )

    def step_faults(self) -> list[dict[str, Any]]:
        return self._call("GET", "/step-faults")

    def clear_step_faults(self) -> None:
        self._call("DELETE", "/step-faults")

    def holds(self) -> list[dict[str, Any]]:
        return self._call("GET", "/holds")

    def wait_for_hold(self, *, fault_id: int | None = None, timeout: float = 30.0) -> dict[str, Any]:
        """Waits until a request is held (by `fault_id`, or any); returns it. TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            held = [h for h in self.holds() if fault_id is None or h["FaultId"] == fault_id]
            if held:
                return held[0]
            if time.monotonic() > deadline:
                raise TimeoutError(f"no request was held within {timeout} s")
            time.sleep(0.02)

    def release_holds(self, hold_id: int | None = None) -> int:
        """Lets held requests go on (one, or all); returns how many."""
        return self._call("POST", "/holds/release", {} if hold_id is None else {"Id": hold_id})["Released"]

    # -- statistics -------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Over all jobs: Jobs, FilesIssued, FilesCompleted, FilesRejected, DuplicateCompletions,
        BytesReceived, and the same figures per job in PerJob."""
        return self._call("GET", "/stats")

    def job_stats(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/jobs/{job_id}/stats")


def _trigger_count(count: int | None, every: bool) -> dict[str, Any]:
    if every:
        if count is not None:
            raise ValueError("give count or every, not both")
        return {"Every": True}
    return {"Count": count or 1}
