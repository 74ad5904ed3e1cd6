"""The control API under /_sim/ (no auth): create jobs, inspect state, inject faults, move the clock."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from .bodies import Body
from .clock import format_utc
from .faults import OPERATIONS, StatusFault
from .jobgen import generate_parameters
from .problems import ProblemError
from .simulator import RegistrySimulator
from .stats import compute_stats
from .store import JOB_TYPES

CONTROL_PREFIX = "/_sim"
MAX_JOBS_PER_CALL = 1000


def _body() -> Body:
    """Control bodies are optional JSON objects (names case-insensitive, like the agent API)."""
    if not request.get_data():
        return Body({})
    return Body.of(request)


def _optional_int(body: Body, name: str, default: int | None, minimum: int = 0) -> int | None:
    return default if body.raw(name) is None else body.integer(name, minimum=minimum)


def control_blueprint(sim: RegistrySimulator) -> Blueprint:
    bp = Blueprint("control", __name__, url_prefix=CONTROL_PREFIX)

    @bp.get("/info")
    def info() -> Response:
        return jsonify(
            {
                "TenantId": sim.identity.tenant_id,
                "ServicePrincipalId": sim.identity.principal_id,
                "ClientId": sim.identity.client_id,
                "RegistryUrl": sim.base_url,
                "AgentServiceUrl": sim.agent_service_url,
                "StsUrl": sim.sts_url,
                "TokenUrl": sim.token_url,
                "FileKeyId": sim.identity.file_key.kid,
                "UploadContainer": sim.storage.container,
                "NowUtc": format_utc(sim.clock.now()),
            }
        )

    @bp.post("/jobs")
    def create_jobs() -> tuple[Response, int]:
        body = _body()
        job_type = body.required_string("Type")
        if job_type not in JOB_TYPES:
            raise ProblemError(400, f"Type must be one of {', '.join(JOB_TYPES)}")
        count = _optional_int(body, "Count", 1, minimum=1) or 1
        if count > MAX_JOBS_PER_CALL:
            raise ProblemError(400, f"Count must be at most {MAX_JOBS_PER_CALL}")
        camera_ids = body.raw("CameraIds")
        if camera_ids is not None and (
            not isinstance(camera_ids, list) or not camera_ids or not all(isinstance(c, str) for c in camera_ids)
        ):
            raise ProblemError(400, "CameraIds must be a non-empty list of strings")
        given = body.raw("Parameters")
        verify_content = body.raw("VerifyContent")
        if verify_content is None:
            verify_content = True
        if not isinstance(verify_content, bool):
            raise ProblemError(400, "VerifyContent must be true or false")
        agent_id = body.string("AgentId", required=False)
        jobs = [
            sim.store.create(
                job_type,
                given
                if given is not None
                else generate_parameters(job_type, sim.clock.now(), camera_ids or sim.default_camera_ids),
                verify_content=verify_content,
                agent_id=agent_id,
            )
            for _ in range(count)
        ]
        return jsonify(jobs), 201

    @bp.get("/jobs")
    def list_jobs() -> Response:
        return jsonify(sim.store.summaries())

    @bp.get("/jobs/<job_id>")
    def job(job_id: str) -> Response:
        return jsonify(sim.store.detail(job_id, sim.storage.read_sas_url))

    @bp.get("/jobs/<job_id>/locks")
    def lock_history(job_id: str) -> Response:
        """Every lock of the job, oldest first: LockToken, AgentId, LockedUtc, EndedUtc (simulator clock),
        LockedHostUtc, EndedHostUtc (the hosts' clock) and Ending (released, completed, canceled, expired,
        taken over; null while held)."""
        return jsonify(sim.store.lock_history(job_id))

    @bp.post("/jobs/<job_id>/expire-lock")
    def expire_lock(job_id: str) -> Response:
        sim.store.expire_lock(job_id)
        return Response(status=204)

    @bp.post("/jobs/<job_id>/lose-lock")
    def lose_lock(job_id: str) -> Response:
        """Another agent takes the job's lock now (the current holder's calls answer 409)."""
        return jsonify({"Outcome": sim.store.take_over_lock(job_id, "control API")})

    @bp.post("/jobs/<job_id>/offer")
    def offer(job_id: str) -> Response:
        """`{"AgentId": "…"}` (or null): the agent the job is offered to from now on (a job posted for no agent
        yet lets a test arm faults scoped to it before any agent can take it)."""
        body = _body()
        sim.store.offer_to(job_id, body.string("AgentId", required=False))
        return jsonify({"JobId": job_id, "AgentId": body.string("AgentId", required=False)})

    @bp.get("/jobs/<job_id>/stats")
    def job_stats(job_id: str) -> Response:
        sim.store.job_parameters(job_id)  # 404 for an unknown job
        return jsonify(compute_stats(sim, job_id)["PerJob"][0])

    @bp.get("/stats")
    def stats() -> Response:
        return jsonify(compute_stats(sim))

    @bp.get("/requests")
    def requests_log() -> Response:
        since = request.args.get("since", "0")
        if not since.isdigit():
            raise ProblemError(400, "since must be a non-negative integer")
        return jsonify(sim.requests.since(int(since)))

    @bp.get("/faults")
    def faults() -> Response:
        return jsonify(
            {
                **sim.faults.to_json(),
                "Transforms": sim.transforms.to_json(),
                "StepFaults": sim.step_faults.to_json(),
                "Holds": sim.step_faults.holds(),
            }
        )

    @bp.delete("/faults")
    def clear_faults() -> Response:
        """Everything armed: status faults, latency, expired SAS, transforms, step faults; holds let go."""
        sim.clear_faults()
        return Response(status=204)

    @bp.post("/transforms")
    def add_transform() -> tuple[Response, int]:
        return jsonify(sim.transforms.add(_body(), OPERATIONS).to_json()), 201

    @bp.get("/transforms")
    def transforms() -> Response:
        return jsonify(sim.transforms.to_json())

    @bp.delete("/transforms")
    def clear_transforms() -> Response:
        sim.transforms.reset()
        return Response(status=204)

    @bp.delete("/transforms/<int:transform_id>")
    def remove_transform(transform_id: int) -> Response:
        if not sim.transforms.remove(transform_id):
            raise ProblemError(404, f"no transform {transform_id}")
        return Response(status=204)

    @bp.post("/step-faults")
    def add_step_fault() -> tuple[Response, int]:
        return jsonify(sim.step_faults.add(_body(), OPERATIONS).to_json()), 201

    @bp.get("/step-faults")
    def step_faults() -> Response:
        return jsonify(sim.step_faults.to_json())

    @bp.delete("/step-faults")
    def clear_step_faults() -> Response:
        sim.step_faults.reset()
        return Response(status=204)

    @bp.get("/holds")
    def holds() -> Response:
        return jsonify(sim.step_faults.holds())

    @bp.post("/holds/release")
    def release_holds() -> Response:
        hold_id = _optional_int(_body(), "Id", None, minimum=1)
        return jsonify({"Released": sim.step_faults.release(hold_id)})

    @bp.post("/faults")
    def add_fault() -> tuple[Response, int]:
        body = _body()
        kind = body.raw("Kind") or _infer_kind(body)
        if kind == "ExpiredSas":
            sim.faults.add_expired_sas(_optional_int(body, "Count", 1, minimum=1) or 1)
            return jsonify(sim.faults.to_json()), 201
        operation = body.required_string("Operation")
        if operation not in OPERATIONS:
            raise ProblemError(400, f"Operation must be one of {', '.join(OPERATIONS)}")
        if kind == "Latency":
            sim.faults.set_latency(operation, body.integer("LatencyMs"))
        elif kind == "Status":
            sim.faults.add_status(_status_fault(body, operation))
        else:
            raise ProblemError(400, "Kind must be Status, Latency or ExpiredSas")
        return jsonify(sim.faults.to_json()), 201

    add_clock_and_config_routes(bp, sim.clock, sim.config)

    @bp.post("/reset")
    def reset() -> Response:
        sim.reset()
        return Response(status=204)

    return bp


def _infer_kind(body: Body) -> str:
    if body.raw("Status") is not None:
        return "Status"
    if body.raw("LatencyMs") is not None:
        return "Latency"
    raise ProblemError(400, "give Kind (Status, Latency or ExpiredSas), or Status, or LatencyMs")


def _status_fault(body: Body, operation: str) -> StatusFault:
    status = body.integer("Status", minimum=100)
    if status > 599:
        raise ProblemError(400, "Status must be an HTTP status code")
    detail = body.raw("Detail")
    if detail is not None and not isinstance(detail, str):
        raise ProblemError(400, "Detail must be a string")
    return StatusFault(
        operation=operation,
        status=status,
        remaining=_optional_int(body, "Count", 1, minimum=1) or 1,
        retry_after=_optional_int(body, "RetryAfter", None),
        detail=detail,
        after_processing=bool(body.raw("AfterProcessing")),
    )


def add_clock_and_config_routes(bp: Blueprint, clock: Any, config: Any) -> None:
    """`/clock`, `/clock/advance` and `/config`, the same for every simulator (clock: SimClock; config:
    anything with `to_json()` and `update(dict)` raising ValueError)."""

    def clock_json() -> dict[str, Any]:
        return {"NowUtc": format_utc(clock.now()), "OffsetSeconds": clock.offset_seconds}

    @bp.get("/clock")
    def get_clock() -> Response:
        return jsonify(clock_json())

    @bp.post("/clock/offset")
    def set_clock_offset() -> Response:
        """The clock runs `Seconds` ahead of real time (negative: behind), whatever it was before."""
        seconds = _body().raw("Seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise ProblemError(400, "Seconds must be a number")
        clock.set_offset(seconds)
        return jsonify(clock_json())

    @bp.post("/clock/advance")
    def advance_clock() -> Response:
        seconds = _body().raw("Seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise ProblemError(400, "Seconds must be a non-negative number")
        clock.advance(seconds)
        return jsonify(clock_json())

    @bp.get("/config")
    def get_config() -> Response:
        return jsonify(config.to_json())

    @bp.post("/config")
    def set_config() -> Response:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise ProblemError(400, "the body must be a JSON object")
        try:
            config.update(data)
        except ValueError as error:
            raise ProblemError(400, str(error)) from None
        return jsonify(config.to_json())
