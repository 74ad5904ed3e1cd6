"""Retry-After of any shape, sent by the Registry simulator: retries are always spaced, never immediate.

Spacing is read from the simulator's request log (when each answer was sent), so the check is on what
the Registry saw, with no clock of the test's own.
"""

from __future__ import annotations

import email.utils
import itertools
import time
from datetime import datetime

import pytest

from shared.http.retry import RetryPolicy
from shared.registry.errors import RegistryRateLimited

POLICY = RetryPolicy(max_attempts=4, backoff_initial=0.2, backoff_max=0.4, deadline=30)
LOG_RESOLUTION = 0.002  # the log's times are in milliseconds


@pytest.fixture(autouse=True)
def default_durations(stack):
    """Other tests shorten locks and tokens (a reset keeps the configuration): these need the defaults."""
    stack.sim.configure(lock_duration_seconds=300, token_lifetime_seconds=3600, sas_ttl_seconds=3600)


def answered_at(stack, operation: str) -> list[tuple[int, float]]:
    return [
        (entry["Status"], datetime.fromisoformat(entry["TimeUtc"]).timestamp())
        for entry in stack.sim.requests()
        if entry["Operation"] == operation
    ]


@pytest.mark.parametrize("value", ["-5", "NaN", "inf", "abc", "0", "99999999999"])
def test_a_retry_after_with_no_usable_wait_is_retried_after_the_jittered_backoff(stack, make_client, value):
    client = make_client(retry=POLICY)
    stack.sim.add_transform("list_jobs", status=503, processed=False, headers={"Retry-After": value}, count=2)

    assert client.list_jobs() == []

    answers = answered_at(stack, "list_jobs")
    assert [status for status, _ in answers] == [503, 503, 200]
    for attempt, (before, after) in enumerate(itertools.pairwise(answers), start=1):
        least = POLICY.backoff(attempt, rand=lambda: 0.0)  # the backoff's lower bound for this attempt
        assert after[1] - before[1] >= least - LOG_RESOLUTION


def test_a_retry_after_http_date_is_still_honoured(stack, make_client):
    client = make_client(retry=POLICY)
    client.list_jobs()  # the access token first, so the wait below is only the Retry-After
    when = email.utils.formatdate(time.time() + 4, usegmt=True)  # whole seconds: at least 3 s from now
    stack.sim.add_transform("list_jobs", status=429, processed=False, headers={"Retry-After": when})

    assert client.list_jobs() == []

    answers = answered_at(stack, "list_jobs")
    assert len(answers) == 3, stack.sim.requests()
    (first_status, _), (status, sent), (retried_status, retried) = answers
    assert (first_status, status, retried_status) == (200, 429, 200)
    assert retried - sent >= 1.5  # far above the 0.2 s backoff: the date was the wait


def test_rate_limited_with_an_unreadable_retry_after_reports_no_retry_after(stack, make_client):
    client = make_client(retry=RetryPolicy(max_attempts=2, backoff_initial=0.05, backoff_max=0.05, deadline=5))
    stack.sim.add_transform("list_jobs", status=429, processed=False, headers={"Retry-After": "NaN"}, every=True)

    with pytest.raises(RegistryRateLimited) as limited:
        client.list_jobs()

    assert limited.value.retry_after is None
    assert [status for status, _ in answered_at(stack, "list_jobs")] == [429, 429]
