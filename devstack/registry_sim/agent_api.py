"""The routes an agent sees: the STS token endpoint and the agent service (docs/protocol.md §2–§4).

Route and field names are written out literally here, independently of the project's client, so
that a client bug cannot hide behind a shared constant.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from .auth import OAuthError
from .bodies import Body
from .clock import format_utc, parse_utc, utc_now
from .content import expected_content
from .problems import ProblemError
from .simulator import AGENT_SERVICE_PATH, STS_PATH, RegistrySimulator
from .store import JOB_TYPES
from .verify import verify_upload

TENANT_PREFIX = AGENT_SERVICE_PATH + "/api/v1/tenant/<tenant_id>"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
FILE_NAME_FORBIDDEN = re.compile(r"[/\\\x00-\x1f\x7f]")
MAX_FILE_NAME = 255
CONTENT_TYPE = re.compile(r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(\s*;.*)?$")


def no_content() -> Response:
    return Response(status=204)


def sts_blueprint(sim: RegistrySimulator) -> Blueprint:
    bp = Blueprint("sts", __name__)

    @bp.post(STS_PATH + "/token", endpoint="token")
    def token() -> tuple[Response, int]:
        try:
            if request.mimetype != FORM_CONTENT_TYPE:
                raise OAuthError("invalid_request", f"the token request must be {FORM_CONTENT_TYPE}")
            duplicated = [name for name in request.form if len(request.form.getlist(name)) > 1]
            if duplicated:
                raise OAuthError("invalid_request", f"repeated parameter {duplicated[0]}")
            body = sim.tokens.issue(request.form.to_dict(), audience=sim.token_url)
        except OAuthError as error:
            g.detail = f"{error.error}: {error.description}"
            response = jsonify({"error": error.error, "error_description": error.description})
            response.headers["Cache-Control"] = "no-store"
            return response, 400
        g.detail = "token issued"
        response = jsonify(body)
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
        return response, 200

    return bp


def agent_blueprint(sim: RegistrySimulator) -> Blueprint:
    bp = Blueprint("agent", __name__, url_prefix=TENANT_PREFIX)

    @bp.url_value_preprocessor
    def take_tenant(endpoint: str | None, values: dict[str, Any] | None) -> None:
        g.tenant_id = (values or {}).pop("tenant_id", None)

    @bp.before_request
    def authenticate() -> None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ProblemError(401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
        if not sim.tokens.is_valid(token.strip()):
            raise ProblemError(
                401,
                "the access token is invalid or expired",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        if g.tenant_id != sim.identity.tenant_id:
            raise ProblemError(404, "unknown tenant")

    @bp.get("/agents/<agent_id>/jobs", endpoint="list_jobs")
    def list_jobs(agent_id: str) -> Response:
        types = None
        if "types" in request.args:
            types = {t.strip().lower() for t in request.args["types"].split(",") if t.strip()}
            unknown = types - set(JOB_TYPES)
            if unknown:
                raise ProblemError(400, f"unknown job type(s) {sorted(unknown)}; known: {', '.join(JOB_TYPES)}")
        jobs = sim.store.list_available(types, agent_id)
        g.detail = f"{len(jobs)} job(s) for agent {agent_id}"
        return jsonify(jobs)

    @bp.post("/jobs/<job_id>/lock", endpoint="lock")
    def lock(job_id: str) -> Response:
        agent_id = Body.of(request).required_string("AgentId")
        result = sim.store.lock(job_id, agent_id)
        g.detail = f"locked by agent {agent_id} until {result['LockExpirationUtc']}"
        return jsonify(result)

    @bp.post("/jobs/<job_id>/lock/renew", endpoint="renew")
    def renew(job_id: str) -> Response:
        result = sim.store.renew(job_id, Body.of(request).required_string("LockToken"))
        g.detail = f"renewed until {result['LockExpirationUtc']}"
        return jsonify(result)

    @bp.put("/jobs/<job_id>/progress", endpoint="progress")
    def progress(job_id: str) -> Response:
        body = Body.of(request)
        token = body.required_string("LockToken")
        done, total = body.integer("TaskProgress"), body.integer("TaskTotal")
        if done > total:
            raise ProblemError(400, "TaskProgress must not exceed TaskTotal")
        sim.store.progress(job_id, token, done, total)
        g.detail = f"progress {done}/{total}"
        return no_content()

    @bp.post("/jobs/<job_id>/complete", endpoint="complete")
    def complete(job_id: str) -> Response:
        body = Body.of(request)
        token, state = body.required_string("LockToken"), body.required_string("State")
        message = body.raw("Message")
        if message is not None and not isinstance(message, str):
            raise ProblemError(400, "Message must be a string")
        sim.store.complete(job_id, token, state, message)
        g.detail = f"completed as {state}"
        return no_content()

    @bp.post("/jobs/<job_id>/cancel", endpoint="cancel")
    def cancel(job_id: str) -> Response:
        body = Body.of(request)
        token, reason = body.required_string("LockToken"), body.required_string("Reason")
        sim.store.cancel(job_id, token, reason)
        g.detail = f"canceled: {reason}"
        return no_content()

    @bp.post("/jobs/<job_id>/release", endpoint="release")
    def release(job_id: str) -> Response:
        sim.store.release(job_id, Body.of(request).required_string("LockToken"))
        g.detail = "released"
        return no_content()

    @bp.post("/jobs/<job_id>/files", endpoint="initialize_upload")
    def initialize_upload(job_id: str) -> Response:
        body = Body.of(request)
        token = body.required_string("LockToken")
        file_name, content_type = body.required_string("FileName"), body.required_string("ContentType")
        if FILE_NAME_FORBIDDEN.search(file_name) or file_name in (".", "..") or len(file_name) > MAX_FILE_NAME:
            raise ProblemError(400, "FileName must be a plain file name (no path separators or control characters)")
        if not CONTENT_TYPE.match(content_type):
            raise ProblemError(400, "ContentType must be a media type such as video/mp4")
        proxied = sim.step_faults.wants_proxy(job_id, file_name)  # a storage fault may fire on this file
        record = sim.store.add_file(job_id, token, file_name, content_type, proxied=proxied)
        expired = sim.faults.take_expired_sas()
        ttl = -60 if expired else sim.config.sas_ttl_seconds
        expiry = (utc_now() + timedelta(seconds=ttl)).replace(microsecond=0)  # SAS times are checked in real time
        uri = sim.storage.write_sas_url(record.blob_name, expiry)
        if proxied:
            uri = sim.storage.via(sim.base_url, uri)
        g.detail = (
            f"file {record.file_id} ({file_name})"
            + (" with an already-expired SAS" if expired else "")
            + (" through the upload proxy" if proxied else "")
        )
        return jsonify(
            {
                "FileId": record.file_id,
                "JsonWebKey": sim.identity.file_key_jwk(),
                "Uri": uri,
                "ExpirationUtc": format_utc(expiry),
            }
        )

    def complete_file(job_id: str, file_id: str, kind: str, fields: dict[str, Any], body: Body) -> Response:
        token = body.required_string("LockToken")
        size, sha256 = body.integer("Size"), body.sha256()
        blob_name = sim.store.begin_file_completion(job_id, file_id, token, kind)
        if blob_name is None:
            g.detail = "already completed (repeated call)"
            return no_content()
        # no store lock held here: the blob may be gigabytes
        content = expected_content(kind, fields) if sim.store.verifies_content(job_id) else None
        result = verify_upload(sim.storage.blob_client(blob_name), sim.identity.file_key, size, sha256, content)
        sim.store.finish_file_completion(
            job_id, file_id, token, kind, {**fields, "Size": size, "Sha256": sha256}, result
        )
        g.detail = f"file {file_id} verified: {size} bytes"
        return no_content()

    def require_known_camera(job_id: str, camera_id: str) -> None:
        cameras = _camera_ids(*sim.store.job_parameters(job_id))
        if cameras is not None and camera_id not in cameras:
            raise ProblemError(400, f"CameraId {camera_id!r} is not one of this job's cameras")

    @bp.post("/jobs/<job_id>/files/<file_id>/media", endpoint="complete_media")
    def complete_media(job_id: str, file_id: str) -> Response:
        body = Body.of(request)
        camera_id = body.required_string("CameraId")
        start, end = body.utc_time("StartTimeUtc"), body.utc_time("EndTimeUtc")
        if parse_utc(start) > parse_utc(end):
            raise ProblemError(400, "StartTimeUtc must not be after EndTimeUtc")
        require_known_camera(job_id, camera_id)
        fields = {"CameraId": camera_id, "StartTimeUtc": start, "EndTimeUtc": end}
        return complete_file(job_id, file_id, "media", fields, body)

    @bp.post("/jobs/<job_id>/files/<file_id>/discovery", endpoint="complete_discovery")
    def complete_discovery(job_id: str, file_id: str) -> Response:
        body = Body.of(request)
        fields = {"DeviceCount": body.integer("DeviceCount")}
        return complete_file(job_id, file_id, "discovery", fields, body)

    @bp.post("/jobs/<job_id>/files/<file_id>/thumbnail", endpoint="complete_thumbnail")
    def complete_thumbnail(job_id: str, file_id: str) -> Response:
        body = Body.of(request)
        camera_id = body.required_string("CameraId")
        fields = {"CameraId": camera_id, "CapturedUtc": body.utc_time("CapturedUtc")}
        require_known_camera(job_id, camera_id)
        return complete_file(job_id, file_id, "thumbnail", fields, body)

    return bp


def _camera_ids(job_type: str, parameters: Any) -> set[str] | None:
    """The cameras a job names, or None when its Parameters are not the usual shape (then no check)."""
    try:
        if job_type == "mediarequest":
            return {camera["CameraId"] for camera in parameters["Cameras"]}
        if job_type == "thumbnail":
            return set(parameters["CameraIds"])
    except (KeyError, TypeError):
        return None
    return None
