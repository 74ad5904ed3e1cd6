"""What a vendor profile is: an engine served by a few HTTP servers, plus vendor-specific control routes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Any, ClassVar

from flask import Blueprint

from .control import VmsSimulatorControl
from .engine import VmsEngine
from .server import AppServer
from .streams import Stream


class Profile(ABC):
    vendor: ClassVar[str]
    operations: ClassVar[tuple[str, ...]]  # operation names the control API accepts for faults
    status_200_faults: ClassVar[bool] = False  # Rhombus: a fault may answer HTTP 200 with error: true

    def __init__(self, engine: VmsEngine, *, host: str = "127.0.0.1", verbose: bool = False) -> None:
        self.engine = engine
        self.host = host
        self.verbose = verbose
        self._servers: list[AppServer] = []
        self._control: VmsSimulatorControl | None = None

    # lifecycle --------------------------------------------------------------------------------

    @abstractmethod
    def _create_servers(self) -> list[AppServer]:
        """The profile's servers, not yet started (the first one carries the control API's main URL)."""

    def start(self) -> Profile:
        if self._servers:
            raise RuntimeError(f"the {self.vendor} simulator is already started")
        try:
            self._servers = self._create_servers()
            for server in self._servers:
                server.bind()
            for server in self._servers:
                server.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        servers, self._servers = self._servers, []
        for server in servers:
            server.stop()

    def __enter__(self) -> Profile:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _server(self, index: int) -> AppServer:
        if not self._servers:
            raise RuntimeError(f"the {self.vendor} simulator is not started")
        return self._servers[index]

    @property
    def control_url(self) -> str:
        return self._server(0).url

    @property
    def control(self) -> VmsSimulatorControl:
        """A client of this profile's /_sim control API."""
        if self._control is None or self._control.base_url != self.control_url:
            self._control = VmsSimulatorControl(self.control_url)
        return self._control

    # what the control API needs ---------------------------------------------------------------

    @abstractmethod
    def resolve_url(self, url: str) -> Stream:
        """The stream a download URL of this profile serves (VmsError 404 if it names none)."""

    @abstractmethod
    def info(self) -> dict[str, Any]:
        """Vendor URLs and identifiers for /_sim/info (no secrets)."""

    def job_url(self, job_id: str) -> str | None:
        """The download URL of a job's whole result, if it has one (a Rhombus clip)."""
        return None

    def job_urls(self, job_id: str) -> dict[str, str]:
        """Download URLs of a job's outputs, by output id (EEN export files)."""
        return {}

    def extend_control(self, bp: Blueprint) -> None:  # noqa: B027 (optional hook)
        """Adds vendor-specific routes to the /_sim blueprint (none by default)."""

    def reset(self) -> None:
        self.engine.reset()
