"""HostProcess: `python -m devstack.funchost run` as a child process, for scale-out and crash tests.

The settings go to a private temporary local.settings.json (mode 0600), never onto the command line
where `ps` would show them. The child's output (its log) goes to `log_path`.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from .config import load_settings
from .errors import FuncHostError
from .host import REPO_ROOT, default_instance_id

READY_MARKER = "Job host started"
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: Linux kills it when the process that started it dies (tests never leak hosts)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class HostProcess:
    def __init__(
        self,
        app_dir: Path | str = REPO_ROOT,
        settings: Mapping[str, Any] | None = None,
        *,
        settings_file: Path | str | None = None,
        instance_id: str | None = None,
        host_id: str | None = None,
        log_path: Path | str | None = None,
        max_polling_interval: float | None = None,
        message_visibility: int | None = None,
        lease_duration: int | None = None,
        lease_retry_interval: float | None = None,
        shutdown_timeout: float = 30.0,
        startup_timeout: float = 30.0,
        python: str = sys.executable,
    ) -> None:
        self.app_dir = Path(app_dir).resolve()
        self.settings = load_settings(settings, settings_file)
        self.instance_id = instance_id or default_instance_id()
        self.host_id = host_id
        self.log_path = Path(log_path) if log_path is not None else None
        self.max_polling_interval = max_polling_interval
        self.message_visibility = message_visibility
        self.lease_duration = lease_duration
        self.lease_retry_interval = lease_retry_interval
        self.shutdown_timeout = shutdown_timeout
        self.startup_timeout = startup_timeout
        self.python = python
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: Path | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def returncode(self) -> int | None:
        return self._process.poll() if self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self, settings_path: Path) -> list[str]:
        args = [self.python, "-m", "devstack.funchost", "run", "--app-dir", str(self.app_dir)]
        args += ["--settings", str(settings_path), "--instance-id", self.instance_id]
        args += ["--shutdown-timeout", str(self.shutdown_timeout)]
        options = {
            "--host-id": self.host_id,
            "--max-polling-interval": self.max_polling_interval,
            "--message-visibility": self.message_visibility,
            "--lease-duration": self.lease_duration,
            "--lease-retry-interval": self.lease_retry_interval,
        }
        for option, value in options.items():
            if value is not None:
                args += [option, str(value)]
        return args

    def start(self, wait_ready: bool = True) -> HostProcess:
        if self._process is not None:
            raise FuncHostError("the host process is already started")
        self._workdir = Path(tempfile.mkdtemp(prefix="funchost-"))
        settings_path = self._workdir / "local.settings.json"
        fd = os.open(settings_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            json.dump({"IsEncrypted": False, "Values": self.settings}, file)
        if self.log_path is None:
            self.log_path = self._workdir / "host.log"
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), environment.get("PYTHONPATH")]))
        environment["PYTHONUNBUFFERED"] = "1"
        on_main_thread = threading.current_thread() is threading.main_thread()
        with open(self.log_path, "ab") as output:
            self._process = subprocess.Popen(
                self.command(settings_path),
                cwd=REPO_ROOT,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the terminal reaches the parent only; it stops us in order
                preexec_fn=_die_with_parent if on_main_thread else None,  # PDEATHSIG follows the creating thread
            )
        if wait_ready:
            self.wait_ready()
        return self

    def wait_ready(self) -> None:
        """Waits for the child's "Job host started" log line; raises with its output if it fails."""
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if READY_MARKER in self.output():
                return
            if not self.running:
                raise FuncHostError(f"the host process exited with {self.returncode}:\n{self.output()[-3000:]}")
            time.sleep(0.05)
        self.kill()
        raise FuncHostError(f"the host process was not ready within {self.startup_timeout:.0f} s")

    def output(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float | None = None) -> int | None:
        """SIGTERM (a graceful shutdown), then SIGKILL if it has not exited after `timeout`."""
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(self.shutdown_timeout + 10 if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._cleanup()
        return process.returncode if process is not None else None

    def kill(self) -> None:
        """SIGKILL, like a crashed instance: no cleanup, leases and messages are left to expire."""
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        self._cleanup()

    def _cleanup(self) -> None:
        if self._workdir is not None:
            log_inside = self.log_path is not None and self._workdir in self.log_path.parents
            (self._workdir / "local.settings.json").unlink(missing_ok=True)
            if not log_inside:  # keep the log readable after the process ended
                shutil.rmtree(self._workdir, ignore_errors=True)
                self._workdir = None

    def __enter__(self) -> HostProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
