"""The Clearance Registry agent-service client: one method per operation of the contract.

Every call: bearer token (renewed once on a 401), retries per the RetryPolicy, connect/read timeouts,
one pooled session, and the response status mapped to a RegistryError subclass the agent can act on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import quote

import requests
from pydantic import BaseModel, ValidationError

from shared.http.auth import TokenHeader
from shared.http.retry import RetryingSender, RetryPolicy, Timeouts
from shared.http.sender import AuthenticatedSender, Call
from shared.http.session import pooled_session
from shared.registry import contract
from shared.registry.auth import TokenProvider
from shared.registry.connection_file import ConnectionFile
from shared.registry.contract import Job, Lock, Operation, UploadTicket
from shared.registry.errors import RegistryFailures, RegistryProtocolError
from shared.wire import describe_validation_error

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)


class RegistryClient:
    """Thread-safe: share one instance per worker process."""

    def __init__(
        self,
        connection: ConnectionFile,
        agent_id: str,
        *,
        agent_service_url: str | None = None,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.connection = connection
        self.agent_id = agent_id
        base = (agent_service_url or connection.default_agent_service_url).rstrip("/")
        self._tenant_base = base + contract.TENANT_BASE.format(tenant_id=quote(connection.tenant_id, safe=""))
        transport = RetryingSender(session or pooled_session(), retry or RetryPolicy(), timeouts or Timeouts())
        self._tokens = TokenProvider(connection, transport)
        self._sender = AuthenticatedSender(
            transport, RegistryFailures(), TokenHeader(self._tokens), default_headers={"Accept": "application/json"}
        )

    # ---- jobs and locks ---------------------------------------------------------------------------

    def list_jobs(self, types: Iterable[str] | None = None) -> list[Job]:
        """Available jobs; an entry that cannot be read is logged and skipped, not fatal to the others."""
        query = {contract.LIST_JOBS_TYPES_QUERY: ",".join(types)} if types else None
        body = self._json(self._call(Operation.LIST_JOBS, params=query), Operation.LIST_JOBS)
        if not isinstance(body, list):
            raise RegistryProtocolError("list_jobs: the Registry did not return a JSON array", operation="list_jobs")
        jobs = []
        for index, item in enumerate(body):
            try:
                jobs.append(Job.model_validate(item))
            except ValidationError as exc:
                job_id = item.get("Id") or item.get("id") if isinstance(item, dict) else None
                log.error(
                    "Skipping unreadable job #%d (id %s) in the Registry's job list: %s",
                    index,
                    job_id,
                    describe_validation_error(exc, source="job"),
                )
        return jobs

    def lock(self, job_id: str) -> Lock:
        """Locks the job; for a job this agent already holds, the Registry answers its current lock.
        The lock's expiry is returned in this host's clock (see `_in_our_clock`)."""
        response = self._call(Operation.LOCK, job_id=job_id, body=contract.lock_body(self.agent_id))
        return _in_our_clock(self._model(response, Lock, Operation.LOCK, job_id), response)

    def renew(self, job_id: str, lock_token: str) -> Lock:
        response = self._call(Operation.RENEW, job_id=job_id, body=contract.renew_body(lock_token))
        return _in_our_clock(self._model(response, Lock, Operation.RENEW, job_id), response)

    def report_progress(self, job_id: str, lock_token: str, progress: int, total: int) -> None:
        self._call(Operation.PROGRESS, job_id=job_id, body=contract.progress_body(lock_token, progress, total))

    def complete(self, job_id: str, lock_token: str, state: str, message: str | None = None) -> None:
        if state not in contract.COMPLETION_STATES:
            raise ValueError(f"unknown completion state {state!r}")
        self._call(Operation.COMPLETE, job_id=job_id, body=contract.complete_body(lock_token, state, message))

    def cancel(self, job_id: str, lock_token: str, reason: str) -> None:
        self._call(Operation.CANCEL, job_id=job_id, body=contract.cancel_body(lock_token, reason))

    def release(self, job_id: str, lock_token: str) -> None:
        self._call(Operation.RELEASE, job_id=job_id, body=contract.release_body(lock_token))

    # ---- files ------------------------------------------------------------------------------------

    def initialize_upload(self, job_id: str, lock_token: str, file_name: str, content_type: str) -> UploadTicket:
        body = contract.initialize_upload_body(lock_token, file_name, content_type)
        response = self._call(Operation.INITIALIZE_UPLOAD, job_id=job_id, body=body)
        return self._model(response, UploadTicket, Operation.INITIALIZE_UPLOAD, job_id)

    def complete_media(
        self,
        job_id: str,
        lock_token: str,
        file_id: str,
        *,
        camera_id: str,
        start: datetime,
        end: datetime,
        size: int,
        sha256: str,
    ) -> None:
        body = contract.complete_media_body(lock_token, camera_id, start, end, size, sha256)
        self._call(Operation.COMPLETE_MEDIA, job_id=job_id, file_id=file_id, body=body)

    def complete_discovery(
        self, job_id: str, lock_token: str, file_id: str, *, device_count: int, size: int, sha256: str
    ) -> None:
        body = contract.complete_discovery_body(lock_token, device_count, size, sha256)
        self._call(Operation.COMPLETE_DISCOVERY, job_id=job_id, file_id=file_id, body=body)

    def complete_thumbnail(
        self,
        job_id: str,
        lock_token: str,
        file_id: str,
        *,
        camera_id: str,
        captured: datetime,
        size: int,
        sha256: str,
    ) -> None:
        body = contract.complete_thumbnail_body(lock_token, camera_id, captured, size, sha256)
        self._call(Operation.COMPLETE_THUMBNAIL, job_id=job_id, file_id=file_id, body=body)

    # ---- plumbing ---------------------------------------------------------------------------------

    def _url(self, operation: Operation, **path_params: str) -> tuple[str, str]:
        route = contract.ROUTES[operation]
        quoted = {name: quote(value, safe="") for name, value in path_params.items()}
        return route.method, self._tenant_base + route.path.format(**quoted)

    def _call(
        self,
        operation: Operation,
        *,
        job_id: str | None = None,
        file_id: str | None = None,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> requests.Response:
        path_params = {"agent_id": self.agent_id}
        if job_id is not None:
            path_params["job_id"] = job_id
        if file_id is not None:
            path_params["file_id"] = file_id
        method, url = self._url(operation, **path_params)
        started = time.monotonic()
        response = self._sender.send(method, url, Call(operation.value, job_id), json=body, params=params)
        log.debug(
            "Registry %s job=%s -> %d in %.0f ms",
            operation.value,
            job_id,
            response.status_code,
            (time.monotonic() - started) * 1000,
            extra={"operation": operation.value, "job_id": job_id, "status": response.status_code},
        )
        return response

    @staticmethod
    def _json(response: requests.Response, operation: Operation, job_id: str | None = None) -> Any:
        try:
            return response.json()
        except ValueError:
            raise RegistryProtocolError(
                f"Registry {operation.value}: the response is not JSON", operation=operation.value, job_id=job_id
            ) from None

    def _model(self, response: requests.Response, model: type[M], operation: Operation, job_id: str | None) -> M:
        document = self._json(response, operation, job_id)
        try:
            return model.model_validate(document)
        except ValidationError as exc:
            raise RegistryProtocolError(
                describe_validation_error(exc, source=f"Registry {operation.value} response"),
                operation=operation.value,
                job_id=job_id,
            ) from None


def _in_our_clock(lock: Lock, response: requests.Response) -> Lock:
    """The lock's expiry as this host's clock will see it: the Registry states an absolute time in its own
    clock, so what counts is the time left, `LockExpirationUtc - Date` of the same answer, added to when
    the answer arrived. A host whose clock runs behind or ahead of the Registry's still renews in time.
    Without a readable `Date` header the stated time is used as it is."""
    try:
        stated_at = parsedate_to_datetime(response.headers.get("Date", ""))
    except (TypeError, ValueError, IndexError):
        return lock
    if stated_at is None or stated_at.tzinfo is None:
        return lock
    remaining = lock.lock_expiration_utc - stated_at
    return lock.model_copy(update={"lock_expiration_utc": datetime.now(UTC) + remaining})
