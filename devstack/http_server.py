"""A Flask app served over real HTTP from a background thread (werkzeug, threaded): every simulator's server."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

log = logging.getLogger(__name__)

RAW_HEADERS = "devstack.raw_headers"
"""WSGI environ key: the request headers as received, names in their original case (WSGI upper-cases them)."""


def drop_query(target: str) -> str:
    return target.partition("?")[0]


class _RawHeadersHandler(WSGIRequestHandler):
    """Keeps the request headers as received (a proxy must forward e.g. `x-ms-meta-encryptiondata` unchanged)."""

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        environ[RAW_HEADERS] = list(self.headers.items())
        return environ


class _QuietRequestHandler(_RawHeadersHandler):
    """No access log line per request (the simulators keep their own request logs)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def _redacting_handler(redact: Callable[[str], str]) -> type[WSGIRequestHandler]:
    class RedactingRequestHandler(_RawHeadersHandler):
        """Verbose mode's access log, without signatures or other secrets in query strings."""

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            method, _, rest = self.requestline.partition(" ")
            target, _, version = rest.rpartition(" ")
            self.log("info", '"%s %s %s" %s %s', method, redact(target), version, code, size)

    return RedactingRequestHandler


def _dated_handler(base: type[WSGIRequestHandler], clock: Callable[[], datetime]) -> type[WSGIRequestHandler]:
    class DatedRequestHandler(base):  # type: ignore[valid-type,misc]
        """The `Date` header (RFC 7231) of every answer, from the simulator's clock instead of the host's."""

        def date_time_string(self, timestamp: float | None = None) -> str:
            if timestamp is not None:
                return super().date_time_string(timestamp)
            return format_datetime(clock(), usegmt=True)

    return DatedRequestHandler


class AppServer:
    def __init__(
        self,
        app: Flask,
        name: str,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        verbose: bool = False,
        redact: Callable[[str], str] = drop_query,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.app = app
        self.name = name
        self.host = host
        self.port = port
        self.verbose = verbose
        self._redact = redact
        self._clock = clock
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def bind(self) -> AppServer:
        """Opens the listening socket (so the port is known) without serving yet."""
        if self._server is None:
            handler = _redacting_handler(self._redact) if self.verbose else _QuietRequestHandler
            if self._clock is not None:
                handler = _dated_handler(handler, self._clock)
            self._server = make_server(self.host, self.port, self.app, threaded=True, request_handler=handler)
            self.port = self._server.server_port
        return self

    def start(self) -> AppServer:
        if self._thread is not None:
            raise RuntimeError(f"{self.name} is already started")
        server = self.bind()._server
        assert server is not None
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name=self.name, daemon=True
        )
        self._thread.start()
        log.info("%s listening on %s", self.name, self.url)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        if self._thread is not None:
            server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
