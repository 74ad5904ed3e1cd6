"""Serves a RegistrySimulator over HTTP from a background thread."""

from __future__ import annotations

from types import TracebackType

from devstack.http_server import AppServer

from .app import create_app
from .simulator import RegistrySimulator


class SimulatorServer:
    def __init__(
        self, simulator: RegistrySimulator, host: str = "127.0.0.1", port: int = 0, *, verbose: bool = False
    ) -> None:
        self.simulator = simulator
        self._server = AppServer(
            create_app(simulator), "registry-sim", host, port, verbose=verbose, clock=simulator.clock.now
        )  # answers are dated by the simulator's clock, as the Registry's own

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def port(self) -> int:
        return self._server.port

    def start(self) -> SimulatorServer:
        self.simulator.storage.ensure_container()
        self.simulator.bind(self._server.bind().url)  # the simulator must know its URL before serving
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
