"""FunctionHost: loads a function app and runs its triggers in threads of this process."""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from azure.core.exceptions import ServiceResponseError

from .config import HostConfig, load_settings, worker_threads
from .errors import ConfigError, FuncHostError
from .invocation import Invoker, WorkerPool
from .loader import DEFAULT_CONNECTION, Function, QueueTrigger, connection_string, load_functions
from .queues import QueueListener
from .storage import blob_service, probe_service
from .timers import TimerListener

log = logging.getLogger("devstack.funchost")

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST_ID_SETTING = "AzureFunctionsWebHost__hostid"


class Listener(Protocol):
    function: Function

    def start(self) -> None: ...
    def stop_accepting(self) -> None: ...
    def wait_idle(self, timeout: float | None) -> bool: ...
    def close(self) -> None: ...


def default_instance_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def host_id_for(app_dir: Path, settings: Mapping[str, str]) -> str:
    """The real host's id: a setting, else derived from the app's name (lowercase, <= 32 characters)."""
    text = settings.get(HOST_ID_SETTING) or app_dir.resolve().name
    return re.sub(r"[^a-z0-9-]", "-", text.lower())[:32].strip("-") or "funchost"


class FunctionHost:
    """A local Functions host for one app directory; use as a context manager or start()/stop().

    settings (and settings_file, a local.settings.json) are exported into os.environ before the
    functions are imported and restored on stop(). Settings are secrets: they are never logged.
    Scaled-out instances share a host_id (by default derived from the app directory) and differ
    in instance_id; they coordinate through the storage account only.
    """

    def __init__(
        self,
        app_dir: Path | str = REPO_ROOT,
        settings: Mapping[str, Any] | None = None,
        *,
        settings_file: Path | str | None = None,
        instance_id: str | None = None,
        host_id: str | None = None,
        max_polling_interval: float | None = None,
        message_visibility: int = 600,
        lease_duration: int = 15,
        lease_retry_interval: float = 5.0,
        shutdown_timeout: float = 30.0,
    ) -> None:
        if message_visibility < 2:
            raise ConfigError("message_visibility must be at least 2 seconds (it is renewed at half)")
        if not 15 <= lease_duration <= 60:
            raise ConfigError("lease_duration must be 15 to 60 seconds (a blob lease's range)")
        if max_polling_interval is not None and max_polling_interval < 0.1:
            raise ConfigError("max_polling_interval must be at least 0.1 seconds")
        self.app_dir = Path(app_dir).resolve()
        self._settings_arg = settings
        self._settings_file = settings_file
        self.instance_id = instance_id or default_instance_id()
        self._host_id = host_id
        self.max_polling_interval = max_polling_interval
        self.message_visibility = message_visibility
        self.lease_duration = lease_duration
        self.lease_retry_interval = lease_retry_interval
        self.shutdown_timeout = shutdown_timeout
        self.host_id = ""
        self.config: HostConfig | None = None
        self.functions: list[Function] = []
        self.listeners: list[Listener] = []
        self.worker_threads = 0
        self._pool: WorkerPool | None = None
        self._started = False

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FunctionHost:
        if self._started:
            raise FuncHostError("the host is already started")
        settings = load_settings(self._settings_arg, self._settings_file)
        self._export(settings)
        try:
            self.config = HostConfig.load(self.app_dir).with_max_polling_interval(self.max_polling_interval)
            environment = dict(os.environ)
            self.host_id = self._host_id or host_id_for(self.app_dir, environment)
            self.functions = load_functions(self.app_dir, environment)
            _check_storage_reachable(environment)
            # One worker process per host: every function's invocations share its thread pool.
            self.worker_threads = worker_threads(environment)
            self._pool = WorkerPool(self.worker_threads, f"{self.instance_id}/worker")
            self.listeners = [self._listener(function, environment) for function in self.functions]
        except BaseException:
            self._shutdown_pool()
            self._restore_environ()
            raise
        for listener in self.listeners:
            listener.start()
        self._started = True
        summary = ", ".join(f"{f.name} ({type(f.trigger).__name__})" for f in self.functions) or "none"
        log.info(
            "Job host started: app %s, host id %s, instance %s, functions: %s; %d worker threads",
            self.app_dir,
            self.host_id,
            self.instance_id,
            summary,
            self.worker_threads,
        )
        return self

    def stop(self, timeout: float | None = None) -> bool:
        """Stops taking new work, waits (bounded) for running invocations, releases leases.

        Returns False when some invocations were still running at the deadline: their queue
        messages are left to reappear when their invisibility runs out.
        """
        if not self._started:
            return True
        self._started = False
        timeout = self.shutdown_timeout if timeout is None else timeout
        log.info(
            "Stopping job host (instance %s): waiting up to %.0f s for running invocations", self.instance_id, timeout
        )
        for listener in self.listeners:
            listener.stop_accepting()
        deadline = time.monotonic() + timeout
        idle = True
        for listener in self.listeners:
            if not listener.wait_idle(max(0.0, deadline - time.monotonic())):
                log.warning("function %s still running at shutdown: abandoning it", listener.function.name)
                idle = False
        for listener in self.listeners:
            listener.close()
        self._shutdown_pool(wait=max(0.0, deadline - time.monotonic()) if idle else 0.0)
        self._restore_environ()
        log.info("Job host stopped (instance %s)", self.instance_id)
        return idle

    @property
    def running(self) -> bool:
        return self._started

    def __enter__(self) -> FunctionHost:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- helpers -----------------------------------------------------------------------------

    def _shutdown_pool(self, wait: float = 0.0) -> None:
        """Ends the worker threads (idle ones at once); a run still going after a bounded stop is abandoned."""
        if self._pool is not None:
            self._pool.shutdown(wait)
            self._pool = None

    def _listener(self, function: Function, environment: Mapping[str, str]) -> Listener:
        assert self.config is not None and self._pool is not None
        invoker = Invoker(self.config.function_timeout, self._pool)
        if isinstance(function.trigger, QueueTrigger):
            return QueueListener(
                function,
                invoker,
                self.config.queues,
                instance_id=self.instance_id,
                message_visibility=self.message_visibility,
            )
        storage = connection_string(environment, DEFAULT_CONNECTION, f"timer {function.name!r} (its singleton lock)")
        return TimerListener(
            function,
            invoker,
            blob_service(storage),
            host_id=self.host_id,
            instance_id=self.instance_id,
            lease_duration=self.lease_duration,
            lease_retry_interval=self.lease_retry_interval,
        )

    def _export(self, settings: Mapping[str, str]) -> None:
        """App settings become environment variables, as in the real worker process."""
        _ENVIRON.export(id(self), settings)

    def _restore_environ(self) -> None:
        _ENVIRON.withdraw(id(self))


BUSY_STORAGE_PATIENCE = 30.0
"""Seconds a start waits for a storage account that answers, but slowly (a connection refused fails at once)."""


def _check_storage_reachable(environment: Mapping[str, str]) -> None:
    """Fail at start, in one line, when the host's storage account cannot be reached (the real host would
    log storage errors for ever; a silent host helps nobody)."""
    value = environment.get(DEFAULT_CONNECTION)
    if not value:
        return
    service = probe_service(value)
    patient_until = time.monotonic() + BUSY_STORAGE_PATIENCE
    try:
        while True:
            try:
                service.get_service_properties(timeout=5)
                return
            except ServiceResponseError as error:  # it answered too slowly: there, but busy (a loaded Azurite)
                if time.monotonic() < patient_until:
                    log.warning("The storage account answers slowly (%s); asking again", type(error).__name__)
                    continue
                failure: Exception = error
            except Exception as error:  # noqa: BLE001 - refused or unresolvable: nothing is there
                failure = error
            endpoint = service.url.split("?")[0]
            raise ConfigError(
                f"the storage account in {DEFAULT_CONNECTION} is not reachable at {endpoint} "
                f"({type(failure).__name__}); is Azurite (make stack) or the account running?"
            ) from None
    finally:
        service.close()


class _SharedEnviron:
    """Hosts in one process share os.environ: a setting is restored once no running host exports it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._original: dict[str, str | None] = {}
        self._exports: dict[str, dict[int, str]] = {}  # setting -> {host: value}, latest last

    def export(self, owner: int, settings: Mapping[str, str]) -> None:
        with self._lock:
            for name, value in settings.items():
                if name not in self._exports:
                    self._original[name] = os.environ.get(name)
                    self._exports[name] = {}
                self._exports[name][owner] = value
                os.environ[name] = value

    def withdraw(self, owner: int) -> None:
        with self._lock:
            for name in [name for name, holders in self._exports.items() if owner in holders]:
                holders = self._exports[name]
                del holders[owner]
                if holders:
                    os.environ[name] = list(holders.values())[-1]
                    continue
                del self._exports[name]
                original = self._original.pop(name)
                if original is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = original


_ENVIRON = _SharedEnviron()
