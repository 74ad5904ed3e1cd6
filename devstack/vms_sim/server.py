"""The VMS simulators' servers: the common AppServer, with their own query allow-list in verbose logs."""

from __future__ import annotations

from flask import Flask

from devstack.http_server import AppServer as _AppServer

from .redaction import redact_target


class AppServer(_AppServer):
    def __init__(self, app: Flask, name: str, host: str = "127.0.0.1", port: int = 0, *, verbose: bool = False):
        super().__init__(app, name, host, port, verbose=verbose, redact=redact_target)
