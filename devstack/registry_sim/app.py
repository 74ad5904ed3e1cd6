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
from .proxy import BLUEPRINT as PROXY_BLUEPRINT
from .proxy import storage_proxy_blueprint
from .simulator import RegistrySimulator
from .stepfaults import StepFault, carry_out

log = logging.getLogger(__name__)


def create_app(sim: RegistrySimulator) -> Flask:
    app = Flask("devstack.registry_sim")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.register_blueprint(sts_blueprint(sim))
    app.register_blueprint(agent_blueprint(sim))
    app.register_blueprint(control_blueprint(sim))
    app.register_blueprint(storage_proxy_blueprint(sim))

    def operation() -> str:
        blueprint, _, name = (request.endpoint or "").rpartition(".")
        if blueprint not in ("sts", "agent"):  # the control API is never subject to faults
            return "unknown"
        return name if name in OPERATIONS else "unknown"

    def job_id() -> str | None:
        return (request.view_args or {}).get("job_id")

    def step_fault(fault: StepFault) -> Response | None:
        """Carries out a step fault on this call; a Response replaces the answer."""
        where = request.endpoint.rpartition(".")[2] if request.endpoint else "?"
        answer, note = carry_out(sim, fault, where=f"{where} call", job_id=job_id(), error_response=problem_response)
        g.notes.append(note)
        if answer is not None and fault.action == "Drop":
            g.dropped = True
        return answer

    @app.before_request
    def apply_faults() -> Response | None:
        g.started = time.perf_counter()
        g.notes = []
        op = operation()
        if op == "unknown":
            return None
        delay = sim.faults.latency_seconds(op)
        if delay:
            time.sleep(delay)
        g.transform = sim.transforms.take(op, job_id())
        fault = sim.step_faults.take_registry(op, job_id())
        if fault is not None and fault.after_processing:
            g.after_step_fault = fault
        elif fault is not None and (answer := step_fault(fault)) is not None:
            return answer
        if g.transform is not None and not g.transform.processed:
            g.detail = f"not processed (transform #{g.transform.id})"
            return problem_response(g.transform.status or 503, g.detail)
        status_fault = sim.faults.take_status(op)
        if status_fault is None:
            return None
        if status_fault.after_processing:
            g.after_fault = status_fault
            return None
        g.detail = status_fault.message
        return problem_response(status_fault.status, status_fault.message, status_fault.headers)

    @app.after_request
    def log_request(response: Response) -> Response:
        if request.path.startswith(CONTROL_PREFIX) or request.blueprint == PROXY_BLUEPRINT:
            return response
        fault = g.pop("after_fault", None)
        if fault is not None:
            g.detail = f"processed ({response.status_code}), then {fault.message}"
            response = problem_response(fault.status, fault.message, fault.headers)
        after_step_fault = g.pop("after_step_fault", None)
        if after_step_fault is not None and (answer := step_fault(after_step_fault)) is not None:
            response = answer
        transform = g.pop("transform", None)
        if transform is not None and not g.get("dropped"):
            response, note = transform.apply(response)
            g.notes.append(note)
        op = operation()
        status = 0 if g.get("dropped") else response.status_code  # 0: no answer, the connection was dropped
        sim.requests.add(
            request.method, request.path, request.query_string.decode("latin-1"), op,
            status, time.perf_counter() - g.get("started", time.perf_counter()), job_id(),
        )  # fmt: skip
        if (job := job_id()) is not None:
            detail = "; ".join(part for part in (g.get("detail", ""), *g.get("notes", [])) if part)
            sim.store.record(job, op, None if g.get("dropped") else status, detail)
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
