"""The local stack: Azurite, the Registry simulator and the VMS simulators, on free ports, with state on disk."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from shared.secrets.keyring import LocalKeyFileWrapper

from .azurite import REPO_ROOT, Azurite
from .registry_sim import RegistrySimulator, SimulatorControl, SimulatorIdentity, SimulatorServer
from .registry_sim.config import SimConfig
from .vms_sim.stack import EenEndpoints, RhombusEndpoints, VerkadaEndpoints, VmsSimulators

log = logging.getLogger(__name__)

DEFAULT_STATE_DIR = REPO_ROOT / ".devstack"
STATE_FILE = "state.json"
CONNECTION_FILE = "connection-file.json"
FILE_KEY_FILE = "registry-file-key.pem"
VMS_CREDENTIALS_FILE = "vms-credentials.json"
CREDENTIALS_KEY_FILE = "LOCAL-ONLY-credentials.key"
"""Stands in for the Key Vault key that wraps the credentials' data keys (CREDENTIALS_KEY_FILE): local only."""


def write_private(path: Path, data: bytes) -> None:
    """Writes a secret readable by its owner only (0600), replacing the file atomically."""
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(temporary, path)


class LocalStack:
    """Azurite + the Registry simulator; a context manager that always stops both.

    state_dir=None writes nothing (tests); by default the state goes to <repo>/.devstack/.
    """

    def __init__(
        self,
        state_dir: Path | str | None = DEFAULT_STATE_DIR,
        *,
        lock_duration_seconds: int = 300,
        token_lifetime_seconds: int = 3600,
        sas_ttl_seconds: int = 3600,
        azurite_location: Path | str | None = None,
        identity: SimulatorIdentity | None = None,
        registry_port: int = 0,
        verbose: bool = False,
    ) -> None:
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.config = SimConfig(
            lock_duration_seconds=lock_duration_seconds,
            token_lifetime_seconds=token_lifetime_seconds,
            sas_ttl_seconds=sas_ttl_seconds,
        )
        self.azurite = Azurite(azurite_location, verbose=verbose)
        self._identity = identity
        self._registry_port = registry_port
        self._verbose = verbose
        self.simulator: RegistrySimulator | None = None
        self._server: SimulatorServer | None = None
        self._control: SimulatorControl | None = None
        # VMS simulators (EEN, Rhombus, Verkada)
        self.vms = VmsSimulators(verbose=verbose)
        self._key_dir: Path | None = None  # where the local-only credentials key lives without a state dir

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> LocalStack:
        try:
            self.azurite.start()
            self._create_credentials_key()
            self.simulator = RegistrySimulator(
                self.azurite.connection_string, identity=self._identity, config=self.config
            )
            self._server = SimulatorServer(self.simulator, port=self._registry_port, verbose=self._verbose).start()
            self._control = SimulatorControl(self.registry_url)
            self.vms.start()
            self.simulator.default_camera_ids = self._recording_cameras()
            if self.state_dir is not None:
                self._write_state()
        except BaseException:
            self.stop()
            raise
        return self

    def _recording_cameras(self, count: int = 8) -> list[str]:
        """EEN cameras that are online and recording: what generated jobs refer to, so they can succeed."""
        cameras = self.vms.een.control.cameras()
        return [c["Id"] for c in cameras if c.get("Online") and c.get("HasRecordings")][:count]

    def stop(self) -> None:
        """Stops the simulator then Azurite and removes state.json; safe to call more than once."""
        try:
            self.vms.stop()
            if self._server is not None:
                self._server.stop()
                self._server = None
        finally:
            self.azurite.stop()
            if self.state_dir is not None:
                (self.state_dir / STATE_FILE).unlink(missing_ok=True)
            if self._key_dir is not None:
                shutil.rmtree(self._key_dir, ignore_errors=True)
                self._key_dir = None

    def _create_credentials_key(self) -> None:
        """The local-only key file that replaces Key Vault for sealing stored credentials (kept with the
        state, like Azurite's data, so a persisted token table stays readable; a temporary one otherwise)."""
        if self.state_dir is not None:
            self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            LocalKeyFileWrapper.create(self.state_dir / CREDENTIALS_KEY_FILE)
        else:
            self._key_dir = Path(tempfile.mkdtemp(prefix="clearance-local-key-"))
            LocalKeyFileWrapper.create(self._key_dir / CREDENTIALS_KEY_FILE)

    @property
    def credentials_key_file(self) -> str:
        """The local-only key file (CREDENTIALS_KEY_FILE) that seals the agent's stored VMS credentials."""
        folder = self.state_dir if self.state_dir is not None else self._key_dir
        if folder is None:
            raise RuntimeError("the local stack is not started")
        return str(folder / CREDENTIALS_KEY_FILE)

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- what the stack offers ---------------------------------------------------------------

    def _running_simulator(self) -> RegistrySimulator:
        if self.simulator is None:
            raise RuntimeError("the local stack is not started")
        return self.simulator

    @property
    def sim(self) -> SimulatorControl:
        """A client of the simulator's /_sim control API."""
        if self._control is None:
            raise RuntimeError("the local stack is not started")
        return self._control

    @property
    def registry_url(self) -> str:
        return self._running_simulator().base_url

    @property
    def agent_service_url(self) -> str:
        return self._running_simulator().agent_service_url

    @property
    def sts_url(self) -> str:
        return self._running_simulator().sts_url

    @property
    def token_url(self) -> str:
        return self._running_simulator().token_url

    @property
    def tenant_id(self) -> str:
        return self._running_simulator().identity.tenant_id

    @property
    def connection_file(self) -> dict[str, Any]:
        return self._running_simulator().connection_file()

    @property
    def connection_file_json(self) -> str:
        """The Clearance connection file: a secret (it holds the service principal's private key)."""
        return json.dumps(self.connection_file, indent=2)

    @property
    def file_private_key(self) -> rsa.RSAPrivateKey:
        """The Registry's file-encryption private key: decrypts what agents upload."""
        return self._running_simulator().identity.file_key.key

    @property
    def upload_container(self) -> str:
        return self._running_simulator().storage.container

    # -- VMS simulators (EEN, Rhombus, Verkada) ----------------------------------------------

    @property
    def een(self) -> EenEndpoints:
        """The EEN simulator: auth/api (global) URL, account URL, client credentials, initial refresh token."""
        return self.vms.een

    @property
    def rhombus(self) -> RhombusEndpoints:
        """The Rhombus simulator: API and media URLs, API key."""
        return self.vms.rhombus

    @property
    def verkada(self) -> VerkadaEndpoints:
        """The Verkada simulator: API URL, API key, organisation id."""
        return self.vms.verkada

    @property
    def storage_connection_string(self) -> str:
        return self.azurite.connection_string

    @property
    def blob_endpoint(self) -> str:
        return self.azurite.blob_endpoint

    @property
    def queue_endpoint(self) -> str:
        return self.azurite.queue_endpoint

    @property
    def table_endpoint(self) -> str:
        return self.azurite.table_endpoint

    def state(self) -> dict[str, Any]:
        """What state.json holds (no secrets besides Azurite's public development key)."""
        files = {}
        if self.state_dir is not None:
            files = {
                "connection_file": str(self.state_dir / CONNECTION_FILE),
                "registry_file_key": str(self.state_dir / FILE_KEY_FILE),
                "vms_credentials": str(self.state_dir / VMS_CREDENTIALS_FILE),
            }
        return {
            "registry_url": self.registry_url,
            "agent_service_url": self.agent_service_url,
            "sts_url": self.sts_url,
            "token_url": self.token_url,
            "control_url": self.registry_url + "/_sim",
            "tenant_id": self.tenant_id,
            "blob_endpoint": self.blob_endpoint,
            "queue_endpoint": self.queue_endpoint,
            "table_endpoint": self.table_endpoint,
            "storage_connection_string": self.storage_connection_string,
            "upload_container": self.upload_container,
            "ports": {
                "registry": int(self.registry_url.rsplit(":", 1)[1]),
                "blob": self.azurite.blob_port,
                "queue": self.azurite.queue_port,
                "table": self.azurite.table_port,
            },
            **self.vms.state(),  # VMS simulators: URLs only, the secrets are in vms-credentials.json
            "pid": os.getpid(),
            "azurite_pid": self.azurite.pid,
            **files,
        }

    def _write_state(self) -> None:
        assert self.state_dir is not None
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        gitignore = self.state_dir / ".gitignore"
        if not gitignore.exists():
            gitignore.write_text("# local stack state (secrets): never commit\n*\n")
        sim = self._running_simulator()
        write_private(self.state_dir / CONNECTION_FILE, self.connection_file_json.encode())
        write_private(self.state_dir / FILE_KEY_FILE, sim.identity.file_key.private_pem())
        write_private(self.state_dir / VMS_CREDENTIALS_FILE, self.vms.credentials_json())
        (self.state_dir / STATE_FILE).write_text(json.dumps(self.state(), indent=2) + "\n")
        log.info("local stack state written to %s", self.state_dir)
