"""Azurite (Microsoft's storage emulator) as a child process that we own and always stop."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
AZURITE_BIN = REPO_ROOT / "node_modules" / ".bin" / "azurite"

HOST = "127.0.0.1"
# The well-known development account of Azurite's README: public by design, not a secret.
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

_START_ATTEMPTS = 3
_SAS_SIGNATURE = re.compile(r"(sig=)[^&\s\"]+")
_PR_SET_PDEATHSIG = 1


class AzuriteError(RuntimeError):
    """Azurite is missing, could not start, or died."""


def free_ports(count: int) -> list[int]:
    """Ports the kernel says are free now (all sockets held open together, so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.2):
        return True
    return False


def _die_with_parent() -> None:
    """Runs in the child before exec: Linux kills it if our process dies, even by SIGKILL."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class Azurite:
    """Starts Azurite on free loopback ports; use as a context manager or call start()/stop()."""

    def __init__(
        self,
        location: Path | str | None = None,
        *,
        startup_timeout: float = 20.0,
        stop_timeout: float = 5.0,
        verbose: bool = False,
        executable: Path = AZURITE_BIN,
    ) -> None:
        self.location = Path(location) if location is not None else None
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.verbose = verbose
        self.executable = executable
        self.blob_port = self.queue_port = self.table_port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: Path | None = None
        self._log_path: Path | None = None

    # -- endpoints -------------------------------------------------------------------------

    account_name = ACCOUNT_NAME
    account_key = ACCOUNT_KEY

    @property
    def blob_endpoint(self) -> str:
        return f"http://{HOST}:{self.blob_port}/{ACCOUNT_NAME}"

    @property
    def queue_endpoint(self) -> str:
        return f"http://{HOST}:{self.queue_port}/{ACCOUNT_NAME}"

    @property
    def table_endpoint(self) -> str:
        return f"http://{HOST}:{self.table_port}/{ACCOUNT_NAME}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.blob_endpoint};QueueEndpoint={self.queue_endpoint};"
            f"TableEndpoint={self.table_endpoint};"
        )

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Azurite:
        if self._process is not None:
            raise AzuriteError("Azurite is already started")
        if not self.executable.exists():
            raise AzuriteError(f"Azurite not found at {self.executable}: run `make setup` (or `npm ci` in {REPO_ROOT})")
        self._workdir = Path(tempfile.mkdtemp(prefix="azurite-"))
        self._log_path = self._workdir / "azurite.log"
        atexit.register(self.stop)
        try:
            for attempt in range(1, _START_ATTEMPTS + 1):
                if self._try_start():
                    log.info("Azurite started (pid %s), blob endpoint %s", self.pid, self.blob_endpoint)
                    return self
                log.warning("Azurite port clash, retrying (attempt %d)", attempt)
            raise AzuriteError(f"Azurite could not bind free ports after {_START_ATTEMPTS} attempts")
        except BaseException:
            self.stop()
            raise

    def _try_start(self) -> bool:
        """One start on fresh ports; False when the ports were taken meanwhile (retry)."""
        self.blob_port, self.queue_port, self.table_port = free_ports(3)
        assert self._workdir is not None and self._log_path is not None
        args = [str(self.executable)]
        if self.location is not None:
            self.location.mkdir(parents=True, exist_ok=True)
            args += ["--location", str(self.location)]
        else:
            args += ["--inMemoryPersistence"]
        args += [
            "--disableTelemetry", "--skipApiVersionCheck", "--loose",
            "--blobHost", HOST, "--queueHost", HOST, "--tableHost", HOST,
            "--blobPort", str(self.blob_port), "--queuePort", str(self.queue_port),
            "--tablePort", str(self.table_port),
        ]  # fmt: skip
        if not self.verbose:
            args.append("--silent")
        on_main_thread = threading.current_thread() is threading.main_thread()
        with open(self._log_path, "ab") as output:
            self._process = subprocess.Popen(
                args,
                cwd=self._workdir,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us, and we stop Azurite in order
                # PDEATHSIG fires when the creating *thread* ends, so only use it from the main thread.
                preexec_fn=_die_with_parent if on_main_thread else None,
            )
        deadline = time.monotonic() + self.startup_timeout
        ports = (self.blob_port, self.queue_port, self.table_port)
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                tail = self.log_tail()
                self._process = None
                if "EADDRINUSE" in tail:
                    return False
                raise AzuriteError(f"Azurite exited during startup. Last output:\n{tail}")
            if all(_port_open(port) for port in ports):
                return True
            time.sleep(0.05)
        tail = self.log_tail()
        raise AzuriteError(f"Azurite did not listen within {self.startup_timeout:.0f} s. Last output:\n{tail}")

    def log_tail(self, lines: int = 20) -> str:
        if self._log_path is None or not self._log_path.exists():
            return ""
        text = _SAS_SIGNATURE.sub(r"\1REDACTED", self._log_path.read_text(errors="replace"))
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Terminate, then kill after stop_timeout; idempotent and safe to call from atexit."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                log.warning("Azurite did not stop within %.0f s; killing it", self.stop_timeout)
                process.kill()
                process.wait()
        elif process is not None:
            process.wait()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        atexit.unregister(self.stop)

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
