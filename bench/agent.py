"""End-to-end agent figures on the local stack, through real local Functions host processes.

- thumbnail_jobs_per_s_1host / _2hosts: 200 one-camera thumbnail jobs, from posting to all completed.
- registry_calls_per_file_job: Registry calls one such job costs (request log; polls, renewals and
  token requests excluded).
- idle_poll_registry_calls / idle_poll_storage_writes: what one poll costs when nothing is offered.
- poll_seconds_empty / poll_seconds_10k_history: one poll (nothing offered) on an empty table, and on a
  table holding 10,000 finished jobs (records, plans, items): the active index keeps them equal.
  renew_seconds_empty / renew_seconds_10k_history: the same for a renewal run (with its sweep).
- telemetry_overhead_ratio: thumbnail jobs per second through one host with telemetry on (the OpenTelemetry
  SDK with in-memory exporters: job dimensions, spans, metrics, log records batched as in Azure) over the
  same with telemetry off; the median of four back-to-back pairs (see telemetry_overhead).
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.data.tables import TableClient
from azure.storage.queue import QueueClient

from devstack.agent_env import agent_settings
from devstack.funchost.process import HostProcess
from devstack.stack import REPO_ROOT, LocalStack
from shared.agent.locks.poller import poll
from shared.agent.locks.renewer import renew_all
from shared.agent.wiring.runtime import build_agent
from shared.agent.work.processor import process_message
from shared.settings import AgentSettings

EXCLUDED = {"list_jobs", "renew", "token"}
WRITES = {
    "create_entity",
    "update_entity",
    "upsert_entity",
    "delete_entity",
    "send_message",
    "create_table",
    "create_queue",
    "delete_message",
    "update_message",
}


class CountingProxy:
    """Counts calls to a storage client's write methods, passing everything through."""

    def __init__(self, target: Any, counter: dict[str, int]) -> None:
        self._target, self._counter = target, counter

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if name in WRITES and callable(attribute):

            def counted(*args: Any, **kwargs: Any) -> Any:
                self._counter["writes"] += 1
                return attribute(*args, **kwargs)

            return counted
        return attribute


def thumbnails_per_second(
    stack: LocalStack, hosts: int, jobs: int, tmp_label: str, *, telemetry: str = "off"
) -> tuple[float, float]:
    # Fresh tables per run, so the EEN grant is seeded again: reset the simulator to the initial consent.
    stack.een.control.reset()
    settings = agent_settings(
        stack,
        unique=True,
        POLL_SCHEDULE="*/1 * * * * *",
        MAX_IN_FLIGHT_JOBS="100",
        CLEARANCE_TELEMETRY=telemetry,  # shared/telemetry/setup.py: off, or memory (in-memory exporters)
    )
    camera = stack.een.control.add_camera(Name="bench")["Id"]
    processes = [
        HostProcess(
            REPO_ROOT, settings, instance_id=f"{tmp_label}-{n}", host_id=f"bench-{tmp_label}", max_polling_interval=0.2
        )
        for n in range(hosts)
    ]
    for process in processes:
        process.start()
    try:
        before = len(stack.sim.requests())
        started = time.perf_counter()
        ids = {stack.sim.create_job("thumbnail", {"CameraIds": [camera]})["Id"] for _ in range(jobs)}
        _wait_completed(stack, ids, timeout=600)
        elapsed = time.perf_counter() - started
        calls = [r for r in stack.sim.requests()[before:] if r["Operation"] not in EXCLUDED and r.get("JobId") in ids]
    finally:
        for process in processes:
            process.stop()
    return jobs / elapsed, len(calls) / jobs


def _wait_completed(stack: LocalStack, ids: set[str], timeout: float) -> None:
    """Until every job is Completed, asking about one job at a time: listing every job the simulator holds
    (over a thousand by the telemetry runs) five times a second took CPU the agent was being measured on."""
    pending, deadline = sorted(ids), time.monotonic() + timeout
    while pending:
        if stack.sim.job(pending[-1])["State"] == "Completed":
            pending.pop()
            continue
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(pending)} thumbnail jobs not done after {timeout:.0f} s")
        time.sleep(0.2)


def idle_poll(stack: LocalStack) -> tuple[int, int]:
    agent = build_agent(AgentSettings.from_env(agent_settings(stack, unique=True)))
    agent.services.records.ensure_table()
    agent.queue.create_queue()
    counter = {"writes": 0}
    agent.services.records._table = cast(TableClient, CountingProxy(agent.services.records._table, counter))
    queue = cast(QueueClient, CountingProxy(agent.queue, counter))
    agent.services.registry.list_jobs()  # the token first: it is not part of a poll
    before = len(stack.sim.requests())
    agent.services.queue = queue
    poll(agent.services, max_in_flight=agent.settings.max_in_flight_jobs)
    return len(stack.sim.requests()) - before, counter["writes"]


class RequestCounter(SansIOHTTPPolicy):  # type: ignore[type-arg]
    """Counts every HTTP request a storage client sends (each retry included)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def on_request(self, request: Any) -> None:
        self.count += 1


def table_requests_per_file_job(stack: LocalStack) -> int:
    """Table Storage requests (the lock table: records, index, plan, items, pause) one one-file thumbnail
    job costs from its poll to its completion, counted at the transport, in process (no timers)."""
    stack.een.control.reset()
    stack.sim.reset()
    agent = build_agent(AgentSettings.from_env(agent_settings(stack, unique=True)))
    agent.services.records.ensure_table()
    agent.queue.create_queue()
    counter = RequestCounter()
    counted = TableClient.from_connection_string(
        stack.storage_connection_string, agent.settings.locks_table, per_retry_policies=[counter]
    )
    services = agent.services
    services.records._table = counted
    services.ledger._table = counted
    services.pause._table = counted
    services.records.count_active()  # once per worker process, not per job (the upgrade check)
    camera = stack.een.control.add_camera(Name="bench")["Id"]
    services.registry.list_jobs()  # the Registry token and the VMS grant first: not per job
    next(iter(services.vms.list_cameras()), None)
    job = stack.sim.create_job("thumbnail", {"CameraIds": [camera]})["Id"]
    counter.count = 0
    poll(services, max_in_flight=agent.settings.max_in_flight_jobs)
    deadline = time.monotonic() + 60
    while stack.sim.job(job)["State"] != "Completed":
        if time.monotonic() > deadline:
            raise RuntimeError("the bench job did not complete")
        for message in agent.queue.receive_messages(max_messages=8, visibility_timeout=60):
            process_message(message.content, dequeue_count=1, message_id=message.id, services=services)
            agent.queue.delete_message(message)
    return counter.count


def history_cost(stack: LocalStack, finished_jobs: int = 10_000, runs: int = 7) -> dict[str, tuple[float, str]]:
    """Seconds per poll and per renewal, with no history and with `finished_jobs` finished jobs in the table."""
    stack.sim.reset()
    agent = build_agent(AgentSettings.from_env(agent_settings(stack, unique=True)))
    agent.services.records.ensure_table()
    agent.services.registry.list_jobs()  # the token first: it is not part of a poll

    def timed(work: Any) -> float:
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            work()
            samples.append(time.perf_counter() - started)
        return statistics.median(samples)

    def one_poll() -> None:
        poll(agent.services, max_in_flight=agent.settings.max_in_flight_jobs)

    def one_renewal() -> None:
        renew_all(agent.services, margin=timedelta(minutes=2))

    empty_poll, empty_renew = timed(one_poll), timed(one_renewal)
    _write_history(agent.services.ledger.table, finished_jobs)
    return {
        "poll_seconds_empty": (empty_poll, "s"),
        "poll_seconds_10k_history": (timed(one_poll), "s"),
        "renew_seconds_empty": (empty_renew, "s"),
        "renew_seconds_10k_history": (timed(one_renewal), "s"),
    }


def _write_history(table: TableClient, count: int) -> None:
    """`count` finished jobs as the agent leaves them: a Completed record, its plan and one item each."""
    finished = datetime.now(UTC) - timedelta(days=1)
    records = [
        {"PartitionKey": "job", "RowKey": f"old-{n:05d}", "JobType": "thumbnail", "LockToken": f"t{n}",
         "Generation": f"g{n}", "LockExpiresUtc": finished, "State": "Completed", "CreatedUtc": finished,
         "UpdatedUtc": finished, "FinishedUtc": finished}
        for n in range(count)
    ]  # fmt: skip
    for start in range(0, count, 100):
        table.submit_transaction([("upsert", record) for record in records[start : start + 100]])
    for n in range(count):
        job = f"old-{n:05d}"
        table.submit_transaction(
            [
                ("upsert", {"PartitionKey": job, "RowKey": f"plan-g{n}", "Kind": "plan", "State": "Done"}),
                ("upsert", {"PartitionKey": job, "RowKey": f"item-g{n}-p-t0000", "Kind": "item", "State": "Delivered"}),
            ]
        )


def telemetry_overhead(stack: LocalStack, jobs: int, pairs: int = 4) -> float:
    """Jobs/s with telemetry on over off, one host: the median of `pairs` back-to-back pairs (alternately
    off-on and on-off), each of `jobs` // 2 jobs, so a burst of load from elsewhere spoils one pair, not the
    figure."""
    ratios = []
    for n in range(pairs):
        order = ("off", "memory") if n % 2 == 0 else ("memory", "off")
        rate = {
            mode: thumbnails_per_second(stack, 1, max(10, jobs // 2), f"telemetry-{n}-{mode}", telemetry=mode)[0]
            for mode in order
        }
        ratios.append(rate["memory"] / rate["off"])
    return statistics.median(ratios)


def measure(jobs: int = 200) -> dict[str, tuple[float, str]]:
    with LocalStack(state_dir=None) as stack:
        history = history_cost(stack, 1_000 if jobs < 100 else 10_000)
        requests = table_requests_per_file_job(stack)
        one_rate, calls_per_job = thumbnails_per_second(stack, 1, jobs, "one")
        two_rate, _ = thumbnails_per_second(stack, 2, jobs, "two")
        idle_calls, idle_writes = statistics.median([idle_poll(stack)[0] for _ in range(3)]), idle_poll(stack)[1]
        overhead = telemetry_overhead(stack, jobs)
    return {
        "telemetry_overhead_ratio": (overhead, "ratio"),
        "thumbnail_jobs_per_s_1host": (one_rate, "jobs/s"),
        "thumbnail_jobs_per_s_2hosts": (two_rate, "jobs/s"),
        "registry_calls_per_file_job": (calls_per_job, "calls"),
        "idle_poll_registry_calls": (float(idle_calls), "calls"),
        "idle_poll_storage_writes": (float(idle_writes), "writes"),
        "table_requests_per_file_job": (float(requests), "requests"),
        **history,
    }
