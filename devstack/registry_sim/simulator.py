"""The simulator's parts wired together: one object that the HTTP layer and the server share."""

from __future__ import annotations

from typing import Any

from .auth import TokenService
from .clock import SimClock
from .config import SimConfig
from .faults import FaultInjector
from .identity import SimulatorIdentity
from .requestlog import RequestLog
from .stepfaults import StepFaultInjector
from .storage import DEFAULT_CONTAINER, UploadStorage
from .store import JobStore
from .transforms import TransformSet

AGENT_SERVICE_PATH = "/agentservice"
STS_PATH = "/connect"


class RegistrySimulator:
    """State of one simulated Clearance Registry; served over HTTP by SimulatorServer."""

    def __init__(
        self,
        storage_connection_string: str,
        *,
        identity: SimulatorIdentity | None = None,
        config: SimConfig | None = None,
        container: str = DEFAULT_CONTAINER,
    ) -> None:
        self.identity = identity or SimulatorIdentity.generate()
        self.config = config or SimConfig()
        self.clock = SimClock()
        self.store = JobStore(self.clock, self.config)
        self.tokens = TokenService(self.identity, self.clock, self.config)
        self.faults = FaultInjector()
        self.transforms = TransformSet()
        self.step_faults = StepFaultInjector()
        self.requests = RequestLog()
        self.storage = UploadStorage(storage_connection_string, container)
        self.default_camera_ids: list[str] = []
        """Cameras a job created without parameters refers to (the local stack sets the VMS's own)."""
        self._base_url: str | None = None

    def bind(self, base_url: str) -> None:
        """Called once the server knows its port: the URLs of the connection file depend on it."""
        self._base_url = base_url.rstrip("/")

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("the simulator is not served yet (no base URL)")
        return self._base_url

    @property
    def sts_url(self) -> str:
        return self.base_url + STS_PATH

    @property
    def token_url(self) -> str:
        """The token endpoint, which is also the audience the assertion must carry."""
        return self.sts_url + "/token"

    @property
    def agent_service_url(self) -> str:
        return self.base_url + AGENT_SERVICE_PATH

    def clear_faults(self) -> None:
        """Every armed fault, latency and transform removed; held requests let go."""
        self.faults.reset()
        self.transforms.reset()
        self.step_faults.reset()

    def connection_file(self) -> dict[str, Any]:
        return self.identity.connection_file(self.base_url)

    def reset(self) -> None:
        """Drops jobs, the request log, faults, tokens and the clock offset; keeps identity, keys, config.
        Held requests are let go."""
        self.clear_faults()
        self.store.reset()
        self.requests.reset()
        self.tokens.reset()
        self.clock.reset()
