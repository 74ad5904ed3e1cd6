"""The drill's lanes: one agent each (its own queue, tables and Functions host processes), on the local stack.

Most of the drill runs on the `main` lane (the Registry and EEN simulators of the local stack, two hosts
killed at random). A scenario whose set-up would change what every other job sees gets a lane of its own:
a Registry whose clock runs ahead, an EEN account whose grant is refused, a VMS fault that is not scoped to
one job. Every lane's jobs are offered to that lane's agent only (the Registry simulator's `AgentId`), so
agents sharing a Registry never take each other's jobs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient
from azure.storage.queue import QueueClient

from devstack.agent_env import agent_settings
from devstack.funchost.process import HostProcess
from devstack.registry_sim import RegistrySimulator, SimulatorControl, SimulatorServer
from devstack.registry_sim.config import SimConfig
from devstack.stack import REPO_ROOT, LocalStack
from devstack.vms_sim.control import VmsSimulatorControl
from devstack.vms_sim.een import EenSimulator
from shared.agent.locks.records import LockRecords
from shared.secrets.lock_tokens import lock_token_sealer
from shared.settings import AgentSettings, StorageSettings
from shared.storage import queue_client, table_client

COMMON_SETTINGS = {
    "POLL_SCHEDULE": "*/1 * * * * *",
    "RENEW_SCHEDULE": "*/2 * * * * *",
    "MAX_IN_FLIGHT_JOBS": "20",
    "MAX_DEQUEUE_COUNT": "5",
    # read by the engine of issue 16 (harmless before): shrunk so that every bound fits the drill's time
    "RETRY_DELAY_SECONDS": "2",
    "EXPORT_WAIT_SECONDS": "2",
    "RELEASE_LIMIT": "3",
    "AGENT_PAUSE_SECONDS": "20",
    "RETENTION_DAYS": "30",
    "EXPORT_TIMEOUT_SECONDS": "600",
    "LOCK_RENEW_MARGIN_SECONDS": "30",  # the stack's Registry gives the drill 60 s locks (STACK_LOCK_SECONDS)
}
STACK_LOCK_SECONDS = 60
"""Lock duration of the stack's Registry during a drill. A host killed between the Registry's lock and the
lock record leaves a lock nobody knows of: it is offered again only once it expires, so short locks keep
that wait (5 minutes with the default) inside the drill's time."""
LANE_NAMES = ("main", "rhombus", "een_export", "credential", "clock")
CLOCK_AHEAD_SECONDS = 90
CLOCK_LANE_LOCK_SECONDS = 60
CLOCK_LANE_RENEW_MARGIN = 30


@dataclass
class HostSlot:
    """One scaled-out instance: the current process and every log it wrote (one per start)."""

    number: int
    process: HostProcess | None = None
    logs: list[Path] = field(default_factory=list)


@dataclass
class Lane:
    name: str
    registry: SimulatorControl
    vms: VmsSimulatorControl
    settings: dict[str, str]
    hosts: list[HostSlot]

    @property
    def agent_id(self) -> str:
        return self.settings["CLEARANCE_AGENT_ID"]

    @property
    def storage(self) -> StorageSettings:
        return StorageSettings.from_env(self.settings)

    def table(self) -> TableClient:
        return table_client(self.storage, self.settings["LOCKS_TABLE_NAME"])

    def records(self) -> LockRecords:
        """The lane's lock records, their tokens unsealed with the lane's connection file."""
        return LockRecords(self.table(), sealer=lock_token_sealer(AgentSettings.from_env(self.settings).connection))

    def post(self, job_type: str, parameters: Any, *, verify_content: bool = True, agent_id: str | None = None) -> str:
        """A job offered to this lane's agent only (or to `agent_id`); returns its id."""
        job = self.registry.create_job(
            job_type, parameters, verify_content=verify_content, agent_id=agent_id or self.agent_id
        )
        return str(job["Id"])

    def poison_queue(self) -> QueueClient:
        return queue_client(self.storage, self.settings["JOBS_QUEUE_NAME"] + "-poison")

    def poison_messages(self) -> list[dict[str, Any]]:
        """The poison queue's messages as JSON objects ({} for one that is not), up to 32 peeked, plus a
        `{}` for each one beyond that the queue reports."""
        queue = self.poison_queue()
        try:
            total = queue.get_queue_properties().approximate_message_count or 0
            peeked = queue.peek_messages(max_messages=32) if total else []
        except ResourceNotFoundError:
            return []
        found: list[dict[str, Any]] = []
        for message in peeked:
            try:
                body = message.content
                document = json.loads(body.decode() if isinstance(body, bytes) else body)
            except (ValueError, UnicodeDecodeError):
                document = {}
            found.append(document if isinstance(document, dict) else {})
        return found + [{}] * max(0, total - len(found))

    def logs(self) -> str:
        return "".join(path.read_text(errors="replace") for slot in self.hosts for path in slot.logs if path.exists())

    def start_host(self, slot: HostSlot, workdir: Path) -> None:
        log_path = workdir / f"{self.name}-host-{slot.number}-{len(slot.logs) + 1}.log"
        slot.logs.append(log_path)
        slot.process = HostProcess(
            REPO_ROOT,
            self.settings,
            instance_id=f"drill-{self.name}-{slot.number}-{len(slot.logs)}",
            host_id=f"drill-{self.name}",
            log_path=log_path,
            max_polling_interval=0.5,
            message_visibility=6,
            lease_duration=15,
            lease_retry_interval=1,
        ).start()

    def stop_hosts(self) -> None:
        for slot in self.hosts:
            if slot.process is not None:
                slot.process.stop(timeout=10)
                slot.process = None


class LaneFactory:
    """Builds the lanes a drill needs, and stops whatever extra simulators they started."""

    def __init__(self, stack: LocalStack, hosts: int) -> None:
        self.stack = stack
        self.main_hosts = hosts
        self._stops: list[Callable[[], None]] = []
        self._main_settings: dict[str, str] | None = None

    def _settings(self, name: str, vms: str, **overrides: str) -> dict[str, str]:
        return agent_settings(
            self.stack, vms=vms, unique=True, CLEARANCE_AGENT_ID=f"drill-{name}", **{**COMMON_SETTINGS, **overrides}
        )

    def main_settings(self) -> dict[str, str]:
        if self._main_settings is None:
            self._main_settings = self._settings("main", "een")
        return self._main_settings

    def build(self, name: str) -> Lane:
        stack = self.stack
        if name == "main":
            return Lane(name, stack.sim, stack.een.control, self.main_settings(), self._slots(self.main_hosts))
        if name == "rhombus":
            return Lane(name, stack.sim, stack.rhombus.control, self._settings(name, "rhombus"), self._slots(1))
        if name in ("een_export", "credential"):
            # an EEN account of its own: its grant and its account-wide faults touch this lane only
            een = EenSimulator(seed=f"drill-{name}", camera_count=12)
            een.start()
            self._stops.append(een.stop)
            settings = self._settings(
                name,
                "een",
                EEN_CLIENT_ID=een.auth.client_id,
                EEN_CLIENT_SECRET=een.auth.client_secret,
                EEN_REFRESH_TOKEN=een.auth.initial_refresh_token,
                EEN_AUTH_URL=een.auth_url,
                EEN_API_URL=een.api_url,
                EEN_VIDEO_ROUTE="export" if name == "een_export" else "direct",
            )
            return Lane(name, stack.sim, een.control, settings, self._slots(1))
        if name == "clock":
            # a Registry of its own whose clock runs ahead of the hosts', with short locks so renewal matters
            simulator = RegistrySimulator(
                stack.storage_connection_string, config=SimConfig(lock_duration_seconds=CLOCK_LANE_LOCK_SECONDS)
            )
            server = SimulatorServer(simulator).start()
            self._stops.append(server.stop)
            control = SimulatorControl(simulator.base_url)
            control.set_clock_offset(CLOCK_AHEAD_SECONDS)
            settings = self._settings(
                name,
                "een",
                CLEARANCE_CONNECTION_FILE=json.dumps(simulator.connection_file()),
                CLEARANCE_AGENT_SERVICE_URL=simulator.agent_service_url,
                EEN_TOKEN_TABLE=self.main_settings()["EEN_TOKEN_TABLE"],  # the main lane's EEN account and grant
                EEN_VIDEO_ROUTE="export",  # exports, whose wait keeps a job alive through several renewals
                LOCK_RENEW_MARGIN_SECONDS=str(CLOCK_LANE_RENEW_MARGIN),
            )
            return Lane(name, control, stack.een.control, settings, self._slots(1))
        raise ValueError(f"no lane {name!r}; lanes: {', '.join(LANE_NAMES)}")

    @staticmethod
    def _slots(count: int) -> list[HostSlot]:
        return [HostSlot(n + 1) for n in range(count)]

    def stop(self) -> None:
        stops, self._stops = self._stops, []
        for stop in reversed(stops):
            stop()
