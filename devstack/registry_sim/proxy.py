"""The upload proxy: Blob requests of fault-armed files, forwarded to Azurite unchanged.

While a storage step fault could fire on a new file, InitializeUpload hands out the file's SAS URI on
the simulator's host instead of Azurite's: same path (`/<account>/<container>/<blob>`, which the Azure
SDK reads as a path-style blob URL) and same query. The proxy numbers each file's storage steps, fires
step faults, and forwards method, path, query, headers and the body (streamed) to Azurite, then streams
Azurite's answer back with its status and headers. Other uploads go to Azurite directly.

The query string carries the SAS signature: the proxy never logs or records it (the simulator's
request log and history hold the step, sizes and statuses only).
"""

from __future__ import annotations

import http.client
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from flask import Blueprint, Response, request

from devstack.http_server import RAW_HEADERS

from .clock import utc_now
from .simulator import RegistrySimulator
from .stepfaults import STORAGE_STEPS, StepFault, carry_out

log = logging.getLogger(__name__)

BLUEPRINT = "storage_proxy"
METHODS = ["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PATCH"]
NOT_FORWARDED = frozenset(
    {"host", "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
     "transfer-encoding", "upgrade", "expect"}
)  # fmt: skip
STREAM_CHUNK = 64 * 1024
UPSTREAM_TIMEOUT = 300.0
ERROR_CODES = {
    400: "InvalidInput", 403: "AuthenticationFailed", 404: "BlobNotFound", 409: "LeaseIdMissing",
    412: "ConditionNotMet", 413: "RequestBodyTooLarge", 500: "InternalError", 503: "ServerBusy",
}  # fmt: skip


class PassthroughResponse(Response):
    """No default Content-Type: the answer carries exactly the headers Azurite sent."""

    default_mimetype = None


def storage_step(method: str, comp: str | None) -> str:
    """The Blob operation of a request: PutBlock, PutBlockList, PutBlob, or e.g. `GET metadata`."""
    if method == "PUT" and comp == "block":
        return "PutBlock"
    if method == "PUT" and comp == "blocklist":
        return "PutBlockList"
    if method == "PUT" and comp is None:
        return "PutBlob"
    return f"{method} {comp}" if comp else method


def storage_error(status: int, message: str, headers: dict[str, str | None], code: str | None = None) -> Response:
    """An error the way Azure Storage answers one: XML body and x-ms-error-code."""
    code = code or ERROR_CODES.get(status, "InjectedFault")
    request_id = str(uuid.uuid4())
    text = f"{message}\nRequestId:{request_id}\nTime:{utc_now().strftime('%Y-%m-%dT%H:%M:%S.%fZ')}"
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f"<Error><Code>{escape(code)}</Code><Message>{escape(text)}</Message></Error>"
    )
    response = PassthroughResponse(body.encode("utf-8"), status=status, content_type="application/xml")
    response.headers["x-ms-error-code"] = code
    response.headers["x-ms-request-id"] = request_id
    for name, value in headers.items():
        if value is None:
            response.headers.pop(name, None)
        else:
            response.headers[name] = value
    return response


def storage_proxy_blueprint(sim: RegistrySimulator) -> Blueprint:
    bp = Blueprint(BLUEPRINT, __name__)
    rule = f"/{sim.storage.account_name}/{sim.storage.container}/<path:blob_name>"

    @bp.route(rule, methods=METHODS, endpoint="forward")
    def forward(blob_name: str) -> Response:
        job_id, _, rest = blob_name.partition("/")
        file_id = rest.partition("/")[0]
        file_name = sim.store.file_name(job_id, file_id)
        step = storage_step(request.method, request.args.get("comp"))
        if file_name is None:  # not a ticket's blob: forwarded, nothing recorded
            return _forwarded(sim.storage.endpoint)
        number = sim.store.begin_storage_request(job_id, file_id, step, request.content_length)
        fault = sim.step_faults.take_storage(step, job_id, file_id, file_name) if step in STORAGE_STEPS else None
        where = f"{step} #{number} of file {file_id}"
        answer, note, dropped = _answer(sim, fault, where, job_id, file_id)
        status = None if dropped else answer.status_code
        sim.store.end_storage_request(job_id, file_id, step, number, status, note)
        if note:
            sim.store.record(job_id, "storage", status, note)
        return answer

    return bp


def _answer(
    sim: RegistrySimulator,
    fault: StepFault | None,
    where: str,
    job_id: str,
    file_id: str,
) -> tuple[Response, str, bool]:
    """Azurite's answer or the fault's, what the fault did, and whether the connection is dropped."""
    notes = []

    def error(status: int, message: str, headers: dict[str, str | None]) -> Response:
        return storage_error(status, message, headers, fault.error_code if fault else None)

    def act() -> Response | None:
        assert fault is not None
        replaced, note = carry_out(sim, fault, where=where, job_id=job_id, file_id=file_id, error_response=error)
        notes.append(note)
        return replaced

    if fault is not None and not fault.after_processing and (replaced := act()) is not None:
        _discard_body()  # read the whole request first, so the client sees the answer rather than a reset
        return replaced, "; ".join(notes), fault.action == "Drop"
    upstream = _send(sim.storage.endpoint)
    if upstream is None:
        return storage_error(500, "the upload proxy could not reach storage", {}), "storage unreachable", False
    if fault is not None and fault.after_processing and (replaced := act()) is not None:
        upstream.close()
        return replaced, "; ".join(notes), fault.action == "Drop"
    return _passthrough(upstream), "; ".join(notes), False


def _forwarded(endpoint: str) -> Response:
    upstream = _send(endpoint)
    if upstream is None:
        return storage_error(500, "the upload proxy could not reach storage", {})
    return _passthrough(upstream)


@dataclass
class Upstream:
    """Azurite's answer to a forwarded request, on its own connection (read it, then close it)."""

    connection: http.client.HTTPConnection
    response: http.client.HTTPResponse

    def close(self) -> None:
        self.connection.close()


def _send(endpoint: str) -> Upstream | None:
    """Forwards the current request with http.client, which logs nothing (urllib3 would log the SAS)."""
    received = request.environ.get(RAW_HEADERS) or list(request.headers.items())  # names in their original case
    headers = {name: value for name, value in received if name.lower() not in NOT_FORWARDED}
    chunked = not request.content_length and "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    body: Any = None
    if request.content_length:
        body = request.stream  # read in blocks by http.client: streamed, never whole in memory
    elif chunked:
        body = iter(lambda: request.stream.read(STREAM_CHUNK), b"")
    target = urlsplit(endpoint)
    connection = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=UPSTREAM_TIMEOUT)
    try:
        path = request.environ.get("RAW_URI") or request.full_path
        connection.request(request.method, path, body=body, headers=headers, encode_chunked=chunked)
        return Upstream(connection, connection.getresponse())
    except (OSError, http.client.HTTPException) as exc:
        connection.close()
        log.error("upload proxy: %s %s failed: %s", request.method, request.path, type(exc).__name__)
        return None


def _passthrough(upstream: Upstream) -> Response:
    def body() -> Iterator[bytes]:
        try:
            while chunk := upstream.response.read(STREAM_CHUNK):
                yield chunk
        finally:
            upstream.close()

    response = PassthroughResponse(body(), status=upstream.response.status)
    for name, value in upstream.response.getheaders():
        if name.lower() not in NOT_FORWARDED:
            response.headers.add(name, value)
    return response


def _discard_body() -> None:
    while request.stream.read(STREAM_CHUNK):
        pass
