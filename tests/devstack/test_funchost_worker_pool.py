"""The local host runs functions on the Python worker's thread pool, as Azure does: at most
PYTHON_THREADPOOL_THREAD_COUNT at once, an invocation waits for a free thread, and that wait counts toward
functionTimeout. (Before, every message had its own thread, so a pool smaller than host.json's batch was
invisible locally.) Synchronised with events, never with sleeps or timings."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from devstack.funchost.config import QueuesOptions, deployed_worker_threads, worker_default_threads, worker_threads
from devstack.funchost.invocation import InvocationResult, Invoker, WorkerPool
from devstack.funchost.loader import Function, TimerTrigger
from devstack.funchost.ncrontab import NCrontab

WAIT = 30  # seconds: only reached if the behaviour under test is broken
TRIGGER = TimerTrigger(
    parameter="timer", schedule=NCrontab.parse("0 */5 * * * *"), use_monitor=False, run_on_startup=False
)


class Gate:
    """A function body that records how many runs are inside it and holds them until released."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.inside = 0
        self.most_inside = 0
        self.entered = threading.Semaphore(0)
        self.release = threading.Event()

    def main(self, timer: object) -> None:
        with self.lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        self.entered.release()
        try:
            assert self.release.wait(WAIT), "the test never released the gate"
        finally:
            with self.lock:
                self.inside -= 1


def _function(body: Gate) -> Function:
    return Function(name="gated", directory=Path("."), entry_point=body.main, trigger=TRIGGER)


class TimeoutSeen(logging.Handler):
    """Set when the invoker logs that an invocation exceeded functionTimeout."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("Timeout value"):
            self.seen.set()


def _invoke_in_background(invoker: Invoker, function: Function, results: list[InvocationResult]) -> threading.Thread:
    thread = threading.Thread(target=lambda: results.append(invoker.invoke(function, None, reason="test")))
    thread.start()
    return thread


def test_no_more_functions_run_at_once_than_the_pool_has_threads():
    gate = Gate()
    pool = WorkerPool(2, "test-worker")
    invoker = Invoker(None, pool)
    results: list[InvocationResult] = []
    try:
        threads = [_invoke_in_background(invoker, _function(gate), results) for _ in range(3)]
        assert gate.entered.acquire(timeout=WAIT) and gate.entered.acquire(timeout=WAIT)
        # Two are inside; the third was dispatched but waits for a thread.
        assert not gate.entered.acquire(timeout=0.5)
        assert gate.inside == 2
        gate.release.set()
        assert gate.entered.acquire(timeout=WAIT), "the third run starts once a thread is free"
        for thread in threads:
            thread.join(WAIT)
        assert gate.most_inside == 2
        assert [r.succeeded for r in results] == [True, True, True]
    finally:
        gate.release.set()
        pool.shutdown()


def test_waiting_for_a_worker_thread_counts_toward_the_function_timeout():
    gate = Gate()
    pool = WorkerPool(1, "test-worker")
    timeouts = TimeoutSeen()
    logging.getLogger("devstack.funchost.invocation").addHandler(timeouts)
    first: list[InvocationResult] = []
    second: list[InvocationResult] = []
    try:
        holder = _invoke_in_background(Invoker(None, pool), _function(gate), first)
        assert gate.entered.acquire(timeout=WAIT)
        # The only thread is busy: an invocation dispatched now, with a short functionTimeout, times out while
        # it waits for the thread, before its body ever runs.
        queued = _invoke_in_background(Invoker(0.1, pool), _function(gate), second)
        assert timeouts.seen.wait(WAIT)
        assert gate.inside == 1, "the timed-out invocation has not started"
        gate.release.set()
        for thread in (holder, queued):
            thread.join(WAIT)
        assert first[0].succeeded
        assert second[0].timed_out and not second[0].succeeded
    finally:
        logging.getLogger("devstack.funchost.invocation").removeHandler(timeouts)
        gate.release.set()
        pool.shutdown()


def test_an_exception_in_a_function_is_a_failed_invocation_not_a_dead_worker_thread():
    pool = WorkerPool(1, "test-worker")
    invoker = Invoker(None, pool)

    def broken(timer: object) -> None:
        raise RuntimeError("boom")

    try:
        failing = Function(name="broken", directory=Path("."), entry_point=broken, trigger=TRIGGER)
        assert not invoker.invoke(failing, None, reason="test").succeeded
        fine = Function(name="fine", directory=Path("."), entry_point=lambda timer: None, trigger=TRIGGER)
        assert invoker.invoke(fine, None, reason="test").succeeded, "the pool's one thread still works"
    finally:
        pool.shutdown()


@pytest.mark.parametrize(
    ("value", "expected"),
    [("14", 14), (" 3 ", 3), ("0", None), ("-2", None), ("many", None), ("", None)],
)
def test_the_thread_count_setting_or_the_workers_default(value, expected):
    environ = {"PYTHON_THREADPOOL_THREAD_COUNT": value} if value else {}
    assert worker_threads(environ) == (expected or worker_default_threads())


def test_a_deployment_gives_a_thread_to_every_message_in_flight_and_each_timer():
    assert deployed_worker_threads(QueuesOptions(batch_size=8, new_batch_threshold=4)) == 14
    assert deployed_worker_threads(QueuesOptions(batch_size=1, new_batch_threshold=0)) == 3
