"""Waiting for exports: vendor pacing, a bounded wait, and a prompt stop."""

from datetime import timedelta

import pytest

from shared.vms.base import Capabilities, ClipStatus
from shared.vms.errors import VmsTransient
from shared.vms.polling import wait_for_clip


class ScriptedExport:
    """Stands in for an adapter whose export passes through the given states, one per poll."""

    vendor = "test"

    def __init__(self, states: list[str], min_poll_interval: float = 5.0) -> None:
        self.states = list(states)
        self.polls = 0
        self.capabilities = Capabilities(
            max_window=timedelta(hours=1),
            live_snapshot=True,
            snapshot_at_time=True,
            async_export=True,
            reports_coverage=True,
            min_poll_interval=min_poll_interval,
        )

    def poll_clip(self, ticket):
        self.polls += 1
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return ClipStatus(state, 1.0 if state == "ready" else 0.5)


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_polls_no_faster_than_the_vendor_asks_until_ready():
    export, fake = ScriptedExport(["pending", "running", "running", "ready"]), FakeTime()
    status = wait_for_clip(export, {}, timeout=600, sleep=fake.sleep, clock=lambda: fake.now)
    assert status.state == "ready" and export.polls == 4
    assert fake.sleeps == [5.0, 5.0, 5.0]


def test_a_wait_past_the_timeout_is_a_transient_error():
    export, fake = ScriptedExport(["running"]), FakeTime()
    with pytest.raises(VmsTransient, match="still running"):
        wait_for_clip(export, {}, timeout=30, sleep=fake.sleep, clock=lambda: fake.now)
    assert fake.now <= 30


def test_a_stop_request_ends_the_wait_at_once():
    export, fake = ScriptedExport(["running"]), FakeTime()
    assert (
        wait_for_clip(export, {}, timeout=600, should_stop=lambda: True, sleep=fake.sleep, clock=lambda: fake.now)
        is None
    )
    assert export.polls == 1
