"""Serves a RegistrySimulator over HTTP from a background thread (werkzeug, threaded)."""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .app import create_app
from .simulator import RegistrySimulator

log = logging.getLogger(__name__)


class _QuietRequestHandler(WSGIRequestHandler):
    """No access log line per request (the simulator keeps its own request log)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class SimulatorServer:
    def __init__(
        self, simulator: RegistrySimulator, host: str = "127.0.0.1", port: int = 0, *, verbose: bool = False
    ) -> None:
        self.simulator = simulator
        self.host = host
        self.port = port
        self.verbose = verbose
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> SimulatorServer:
        if self._server is not None:
            raise RuntimeError("the simulator server is already started")
        self.simulator.storage.ensure_container()
        self._server = make_server(
            self.host,
            self.port,
            create_app(self.simulator),
            threaded=True,
            request_handler=None if self.verbose else _QuietRequestHandler,
        )
        self.port = self._server.server_port
        self.simulator.bind(self.url)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="registry-sim", daemon=True
        )
        self._thread.start()
        log.info("Registry simulator listening on %s", self.url)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
