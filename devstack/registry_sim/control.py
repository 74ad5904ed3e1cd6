"""A small client for the simulator's /_sim control API, for tests and demos."""

from __future__ import annotations

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
    ) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"Type": job_type, "Count": count}
        if parameters is not None:
            body["Parameters"] = parameters
        if camera_ids is not None:
            body["CameraIds"] = camera_ids
        return self._call("POST", "/jobs", body)

    def create_job(self, job_type: str, parameters: Any = None) -> dict[str, Any]:
        return self.create_jobs(job_type, parameters)[0]

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
