"""The Flask plumbing every VMS server shares: latency and status faults, the request log, errors.

The vendor modules supply the routes and an error renderer; the /_sim control API is registered on
every server of a profile.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Callable, Iterable

from flask import Blueprint, Flask, Response, g, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from .control_api import CONTROL_PREFIX, control_blueprint
from .errors import DropConnection, VmsError
from .profile import Profile

log = logging.getLogger(__name__)

ErrorRenderer = Callable[[VmsError], Response]
DROPPED_STATUS = 444  # logged for a request whose connection was closed without an answer (nginx's use)


def create_app(name: str, profile: Profile, blueprints: Iterable[Blueprint], render: ErrorRenderer) -> Flask:
    app = Flask(name)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    app.register_blueprint(control_blueprint(profile))
    engine = profile.engine

    def operation() -> str:
        return (request.endpoint or "").rpartition(".")[2] or "unknown"

    @app.before_request
    def apply_faults() -> Response | None:
        g.started = time.perf_counter()
        if request.path.startswith(CONTROL_PREFIX):
            return None
        op = operation()
        delay = engine.faults.latency_seconds(op)
        if delay:
            time.sleep(delay)
        fault = engine.faults.take_status(op)
        if fault is None:
            return None
        return render(VmsError(fault.status, fault.message, headers=fault.headers))

    @app.after_request
    def log_request(response: Response) -> Response:
        if not request.path.startswith(CONTROL_PREFIX):
            engine.log_request(
                request.method, request.path, request.query_string.decode("latin-1"), operation(),
                response.status_code, time.perf_counter() - g.get("started", time.perf_counter()), g.get("job_id"),
                request.headers.get("Range"),
            )  # fmt: skip
        return response

    @app.errorhandler(VmsError)
    def vendor_error(error: VmsError) -> Response:
        return render(error)

    @app.errorhandler(DropConnection)
    def drop_connection(error: DropConnection) -> Response:
        """No answer at all: the socket is shut down, so the client reads EOF where the status line should be
        (werkzeug's write of the response below then fails and is dropped quietly)."""
        connection = request.environ.get("werkzeug.socket")
        if isinstance(connection, socket.socket):
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        return Response(status=DROPPED_STATUS)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        if status == 404:
            return render(VmsError(404, "The API endpoint was not found", reason="endpointNotFound"))
        allow = error.valid_methods if isinstance(error, MethodNotAllowed) else None
        headers = {"Allow": ", ".join(allow)} if allow else None
        return render(VmsError(status, error.description or error.name, headers=headers))

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        log.exception("VMS simulator %s: unexpected error on %s %s", name, request.method, request.path)
        return render(VmsError(500, f"internal error: {type(error).__name__}"))

    return app
