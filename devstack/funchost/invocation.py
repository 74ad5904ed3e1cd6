"""Runs one function invocation the way the real host logs it, and watches host.json functionTimeout.

The function runs on the worker's thread pool, as the Python worker runs synchronous functions: at most
PYTHON_THREADPOOL_THREAD_COUNT at once (default min(32, CPUs + 4)); an invocation the host has dispatched
waits for a free thread, and that wait counts toward functionTimeout, as in Azure.

Limitation: Python cannot stop a thread, so a run that exceeds functionTimeout is logged as timed out
and counted as failed when it ends (the real host abandons it and restarts the worker process).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
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


class WorkerPool:
    """The Python worker's thread pool for synchronous functions: `size` threads take invocations in the order
    they were dispatched. Daemon threads (unlike ThreadPoolExecutor's), so a hung function never keeps a
    stopping host process alive."""

    def __init__(self, size: int, name: str) -> None:
        if size < 1:
            raise ValueError("a worker pool needs at least one thread")
        self.size = size
        self._tasks: queue.SimpleQueue[tuple[Future[Any], Callable[[Any], Any], Any] | None] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True) for i in range(size)]
        for thread in self._threads:
            thread.start()

    def submit(self, call: Callable[[Any], Any], argument: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self._tasks.put((future, call, argument))
        return future

    def shutdown(self, wait: float = 0.0) -> None:
        """Each thread ends after the invocations already dispatched; waits at most `wait` seconds in all for
        them (a hung run is abandoned: its thread is a daemon)."""
        for _ in self._threads:
            self._tasks.put(None)
        deadline = time.monotonic() + wait
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _work(self) -> None:
        while (task := self._tasks.get()) is not None:
            future, call, argument = task
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(call(argument))
            except BaseException as error:  # noqa: BLE001 - handed to the invoker, which reports it
                future.set_exception(error)


class Invoker:
    """Dispatches invocations to `pool` (the worker's threads, shared by every function of a host)."""

    def __init__(self, function_timeout: float | None, pool: WorkerPool) -> None:
        self.function_timeout = function_timeout
        self._pool = pool

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
            # The timeout runs from dispatch: time spent waiting for a worker thread counts, as in Azure.
            self._pool.submit(function.call, argument).result()
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
