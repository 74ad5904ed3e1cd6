"""A lock's expiry in this host's clock: the Registry's stated time left (expiry − its Date header), from
when the answer arrived — so hosts whose clocks are off renew in time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import requests

from shared.registry.client import _in_our_clock
from shared.registry.contract import Lock


def answer(date: str | None) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    if date is not None:
        response.headers["Date"] = date
    return response


def test_a_registry_clock_90_s_ahead_still_gives_the_real_time_left():
    registry_now = datetime.now(UTC) + timedelta(seconds=90)
    lock = Lock(LockToken="t", LockExpirationUtc=registry_now + timedelta(minutes=5))

    local = _in_our_clock(lock, answer(format_datetime(registry_now, usegmt=True)))

    left = (local.lock_expiration_utc - datetime.now(UTC)).total_seconds()
    assert 294 <= left <= 301  # not 390: the host would otherwise renew 90 s too late (Date has whole seconds)


def test_a_registry_clock_behind_ours_does_not_make_the_lock_look_expired():
    registry_now = datetime.now(UTC) - timedelta(minutes=10)
    lock = Lock(LockToken="t", LockExpirationUtc=registry_now + timedelta(minutes=5))

    local = _in_our_clock(lock, answer(format_datetime(registry_now, usegmt=True)))

    assert 294 <= (local.lock_expiration_utc - datetime.now(UTC)).total_seconds() <= 301


def test_without_a_readable_date_the_stated_expiry_is_kept():
    lock = Lock(LockToken="t", LockExpirationUtc=datetime(2030, 1, 1, tzinfo=UTC))
    for date in (None, "", "yesterday", "Mon, 99 Foo 2026 25:61:00"):
        assert _in_our_clock(lock, answer(date)).lock_expiration_utc == lock.lock_expiration_utc
