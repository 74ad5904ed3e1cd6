"""The Flask application: cross-cutting request handling (latency, faults, auth, logging, errors)."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from .agent_api import agent_blueprint, sts_blueprint
from .control_api import CONTROL_PREFIX, control_blueprint
from .faults import OPERATIONS
from .problems import ProblemError, problem_response
from .simulator import RegistrySimulator

log = logging.getLogger(__name__)


def create_app(sim: RegistrySimulator) -> Flask:
    app = Flask("devstack.registry_sim")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.register_blueprint(sts_blueprint(sim))
    app.register_blueprint(agent_blueprint(sim))
    app.register_blueprint(control_blueprint(sim))

    def operation() -> str:
        blueprint, _, name = (request.endpoint or "").rpartition(".")
        if blueprint not in ("sts", "agent"):  # the control API is never subject to faults
            return "unknown"
        return name if name in OPERATIONS else "unknown"

    @app.before_request
    def apply_faults() -> Response | None:
        g.started = time.perf_counter()
        op = operation()
        if op == "unknown":
            return None
        delay = sim.faults.latency_seconds(op)
        if delay:
            time.sleep(delay)
        fault = sim.faults.take_status(op)
        if fault is None:
            return None
        if fault.after_processing:
            g.after_fault = fault
            return None
        g.detail = fault.message
        return problem_response(fault.status, fault.message, fault.headers)

    @app.after_request
    def log_request(response: Response) -> Response:
        if request.path.startswith(CONTROL_PREFIX):
            return response
        fault = g.pop("after_fault", None)
        if fault is not None:
            g.detail = f"processed ({response.status_code}), then {fault.message}"
            response = problem_response(fault.status, fault.message, fault.headers)
        job_id = (request.view_args or {}).get("job_id")
        op = operation()
        sim.requests.add(
            request.method, request.path, request.query_string.decode("latin-1"), op,
            response.status_code, time.perf_counter() - g.get("started", time.perf_counter()), job_id,
        )  # fmt: skip
        if job_id:
            sim.store.record(job_id, op, response.status_code, g.get("detail", ""))
        return response

    @app.errorhandler(ProblemError)
    def problem(error: ProblemError) -> Response:
        g.detail = error.detail
        return problem_response(error.status, error.detail, error.headers)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        g.detail = "no such route" if status == 404 else (error.description or "")
        allow = error.valid_methods if isinstance(error, MethodNotAllowed) else None
        return problem_response(status, g.detail, {"Allow": ", ".join(allow)} if allow else None)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        log.exception("registry simulator: unexpected error on %s %s", request.method, request.path)
        g.detail = f"internal error: {type(error).__name__}"
        return problem_response(500, g.detail)

    return app
