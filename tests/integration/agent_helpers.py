"""Running the agent's functions in process, the way the Functions host would, for the flow tests."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from devstack.agent_env import agent_settings
from shared.agent.locks.poller import poll
from shared.agent.wiring.runtime import Agent, build_agent
from shared.agent.work.messages import JobMessage, decode_message
from shared.agent.work.processor import plan_job, process_message
from shared.settings import AgentSettings


def drain(agent: Agent, *, timeout: float = 90.0, workers: int = 4, dequeue_count: int | None = None) -> list[str]:
    """Process queued messages (including ones that become visible later) until the queue is empty.

    Like the host: several at once, each deleted when its run returns (the agent never raises for a job
    problem; an exception here is a bug and fails the test)."""
    outcomes: list[str] = []
    deadline = time.monotonic() + timeout
    with ThreadPoolExecutor(max_workers=workers) as pool:
        while time.monotonic() < deadline:
            messages = list(agent.queue.receive_messages(messages_per_page=16, max_messages=16, visibility_timeout=300))
            if not messages:
                if agent.queue.get_queue_properties().approximate_message_count == 0:
                    return outcomes
                time.sleep(0.2)
                continue
            outcomes.extend(pool.map(lambda m: _one(agent, m, dequeue_count), messages))
    raise AssertionError(f"the queue did not drain in {timeout} s; outcomes so far: {outcomes}")


def _one(agent: Agent, message: Any, dequeue_count: int | None) -> str:
    outcome = process_message(
        message.content,
        dequeue_count=dequeue_count or message.dequeue_count,
        message_id=message.id,
        services=agent.services,
    )
    agent.queue.delete_message(message)
    return outcome


def plan_only(agent: Agent, message: Any, message_id: str | None = None) -> str:
    """The job message planned by the real planner, its items enqueued, none run (a job of one item would
    otherwise be run by this same run: processor._plan_and_start). For tests of what item messages do."""
    job = decode_message(message.content)
    assert isinstance(job, JobMessage)
    return plan_job(job, message_id=message_id or message.id, services=agent.services, run_inline=False)


def quick_agent(stack: Any, *, heartbeat_every: float = 0.5, **overrides: str) -> Agent:
    """The agent on this stack with fresh tables and short waits: retries after 0.2 s, exports waited for
    1 s per run, heartbeats every `heartbeat_every` s (the deployed defaults are 15 s, 20 s, 10 s)."""
    built = build_agent(AgentSettings.from_env(agent_settings(stack, unique=True, **overrides)))
    built.services.retry_delay = 0.2
    built.services.wait_in_run = 1.0
    built.services.heartbeat_every = heartbeat_every
    return built


def poll_once(agent: Agent):
    return poll(agent.services, max_in_flight=agent.settings.max_in_flight_jobs)


def run_job(agent: Agent, **drain_options: Any) -> list[str]:
    poll_once(agent)
    return drain(agent, **drain_options)


def recorded_camera(
    vms, minutes: int = 20, name: str = "cam", *, hours_ago: float = 2
) -> tuple[str, datetime, datetime]:
    """A camera recording `minutes` from a quarter hour `hours_ago` (so work items fall predictably)."""
    start = (datetime.now(UTC) - timedelta(hours=hours_ago)).replace(second=0, microsecond=0)
    start -= timedelta(minutes=start.minute % 15)
    end = start + timedelta(minutes=minutes)
    camera = vms.add_camera(Name=name, Recordings=[[start.isoformat(), end.isoformat()]])
    return camera["Id"], start, end


def window(camera_id: str, start: datetime, end: datetime) -> dict:
    return {"CameraId": camera_id, "StartTimeUtc": start.isoformat(), "EndTimeUtc": end.isoformat()}


def history(stack, job_id: str, operation: str, status: int | None = None) -> int:
    return sum(
        1
        for h in stack.sim.job(job_id)["History"]
        if h["Operation"] == operation and (status is None or h["Status"] == status)
    )


def end_pause(agent: Agent) -> None:
    """As if the agent's pause (pause.py) had run its course: the next poll checks the cause again."""
    table = agent.services.ledger.table
    row = table.get_entity("active", "~pause")
    row["UntilUtc"] = datetime.now(UTC) - timedelta(seconds=1)
    table.upsert_entity(row)
