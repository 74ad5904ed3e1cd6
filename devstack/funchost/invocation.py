"""Runs one function invocation the way the real host logs it, and watches host.json functionTimeout.

Limitation: Python cannot stop a thread, so a run that exceeds functionTimeout is logged as timed out
and counted as failed when it ends (the real host abandons it and restarts the worker process).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from .loader import Function

log = logging.getLogger("devstack.funchost.invocation")


@dataclass(frozen=True)
class InvocationResult:
    invocation_id: str
    succeeded: bool
    timed_out: bool
    duration: float


class Invoker:
    def __init__(self, function_timeout: float | None) -> None:
        self.function_timeout = function_timeout

    def invoke(self, function: Function, argument: Any, *, reason: str, details: str = "") -> InvocationResult:
        """Calls the function; never raises (an exception is logged and reported as a failure)."""
        invocation_id = str(uuid.uuid4())
        suffix = f", {details}" if details else ""
        log.info("Executing 'Functions.%s' (Reason='%s', Id=%s%s)", function.name, reason, invocation_id, suffix)
        timed_out = threading.Event()
        watchdog = None
        if self.function_timeout is not None:
            watchdog = threading.Timer(
                self.function_timeout, self._on_timeout, (function.name, invocation_id, suffix, timed_out)
            )
            watchdog.daemon = True
            watchdog.start()
        started = time.monotonic()
        succeeded = False
        try:
            function.call(argument)
            succeeded = True
        except Exception as error:  # one readable line; the traceback only with --log-level DEBUG
            log.error(
                "Exception while executing function: Functions.%s (Id=%s%s): %s: %s",
                function.name,
                invocation_id,
                suffix,
                type(error).__name__,
                error,
            )
            log.debug("Traceback of Functions.%s (Id=%s)", function.name, invocation_id, exc_info=True)
        finally:
            if watchdog is not None:
                watchdog.cancel()
        duration = time.monotonic() - started
        if timed_out.is_set():
            succeeded = False
        log.log(
            logging.INFO if succeeded else logging.ERROR,
            "Executed 'Functions.%s' (%s, Id=%s, Duration=%dms%s)",
            function.name,
            "Succeeded" if succeeded else ("Timed out" if timed_out.is_set() else "Failed"),
            invocation_id,
            duration * 1000,
            suffix,
        )
        return InvocationResult(invocation_id, succeeded, timed_out.is_set(), duration)

    def _on_timeout(self, name: str, invocation_id: str, suffix: str, timed_out: threading.Event) -> None:
        timed_out.set()
        log.error(
            "Timeout value of %.0f s (host.json functionTimeout) exceeded by function 'Functions.%s' (Id=%s%s). "
            "funchost cannot stop a Python thread: the run goes on and will count as failed.",
            self.function_timeout,
            name,
            invocation_id,
            suffix,
        )
