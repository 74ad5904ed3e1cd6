"""The retry policy: Retry-After honoured, backoff bounded, deadline kept, other 4xx never retried.

The session is faked at the HTTP level (scripted responses) because these are timing decisions a
simulator cannot make deterministic; the integration tests cover the same rules over real HTTP.
"""

import email.utils
import io

import pytest
import requests

from shared.http.retry import RetryingSender, RetryPolicy, Timeouts, TransportFailure, parse_retry_after


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def response(status: int, retry_after: str | None = None) -> requests.Response:
    r = requests.Response()
    r.status_code = status
    if retry_after is not None:
        r.headers["Retry-After"] = retry_after
    r._content = b"{}"
    r.raw = io.BytesIO(b"{}")
    return r


class ScriptedSession:
    """Answers each request with the next scripted item (a status, a (status, retry_after) or an exception)."""

    def __init__(self, script: list) -> None:
        self.script = list(script)
        self.calls = 0

    def request(self, method, url, **kwargs):
        self.calls += 1
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        if isinstance(item, tuple):
            return response(*item)
        return response(item)


def sender(script, policy=None, clock=None):
    clock = clock or FakeClock()
    session = ScriptedSession(script)
    s = RetryingSender(session, policy or RetryPolicy(), Timeouts(), sleep=clock.sleep, clock=clock.time)
    return s, session, clock


def test_429_waits_exactly_the_retry_after_the_server_asked_for():
    s, session, clock = sender([(429, "7"), (429, "3"), 200])
    assert s.send("GET", "https://x.test/a", operation="op").status_code == 200
    assert clock.sleeps == [7.0, 3.0]
    assert session.calls == 3


def test_503_retry_after_as_http_date_is_honoured():
    clock = FakeClock()
    when = email.utils.formatdate(clock.now + 12, usegmt=True)
    assert parse_retry_after(when, now=clock.time) == pytest.approx(12, abs=1)


def test_5xx_backs_off_exponentially_with_jitter_and_a_cap():
    policy = RetryPolicy(max_attempts=6, backoff_initial=1.0, backoff_max=4.0, deadline=1000)
    s, _session, clock = sender([500, 502, 504, 500, 500, 200], policy)
    assert s.send("GET", "https://x.test/a", operation="op").status_code == 200
    ceilings = [1, 2, 4, 4, 4]
    assert len(clock.sleeps) == 5
    for slept, ceiling in zip(clock.sleeps, ceilings, strict=True):
        assert ceiling / 2 <= slept <= ceiling


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 410, 422])
def test_other_4xx_are_returned_at_once_without_retry(status):
    s, session, clock = sender([status, 200])
    assert s.send("POST", "https://x.test/a", operation="op").status_code == status
    assert session.calls == 1 and clock.sleeps == []


def test_attempts_are_bounded_and_the_last_response_is_returned():
    s, session, _ = sender([503] * 10, RetryPolicy(max_attempts=3, backoff_initial=0.01, deadline=100))
    assert s.send("GET", "https://x.test/a", operation="op").status_code == 503
    assert session.calls == 3


def test_the_deadline_stops_retrying_before_a_retry_after_would_pass_it():
    s, _session, clock = sender([(429, "30"), (429, "30"), 200], RetryPolicy(max_attempts=10, deadline=45))
    assert s.send("GET", "https://x.test/a", operation="op").status_code == 429
    assert clock.sleeps == [30.0]
    assert clock.now - 1000.0 <= 45


def test_connection_errors_are_retried_then_reported_without_the_url_query():
    errors = [requests.ConnectionError("boom https://acct.blob.core.windows.net/c/b?sig=SECRET")] * 3
    s, session, _ = sender(errors, RetryPolicy(max_attempts=3, backoff_initial=0.01, deadline=100))
    with pytest.raises(TransportFailure) as raised:
        s.send("GET", "https://x.test/a?sig=SECRET", operation="op")
    assert session.calls == 3
    assert "SECRET" not in str(raised.value)
    assert "connection failed after 3 attempt(s)" in str(raised.value)


def test_a_timeout_then_success_returns_the_success():
    s, _session, _ = sender([requests.ReadTimeout(), 200], RetryPolicy(backoff_initial=0.01))
    assert s.send("GET", "https://x.test/a", operation="op").status_code == 200


def test_unreadable_retry_after_falls_back_to_backoff():
    s, _, clock = sender([(429, "soon"), 200], RetryPolicy(backoff_initial=2, backoff_max=2))
    s.send("GET", "https://x.test/a", operation="op")
    assert 1 <= clock.sleeps[0] <= 2


# -- Retry-After values that must not mean "retry at once" -------------------------------------------------


@pytest.mark.parametrize(
    "value", ["-5", "NaN", "nan", "inf", "-inf", "Infinity", "abc", "1e3", "+5", "5s", "", "   ", "99999999999"]
)
def test_unusable_retry_after_values_are_unreadable(value):
    assert parse_retry_after(value) is None


@pytest.mark.parametrize(("value", "seconds"), [("0", 0.0), (" 7 ", 7.0), ("2.5", 2.5), ("86400", 86400.0)])
def test_delay_seconds_are_read(value, seconds):
    assert parse_retry_after(value) == seconds


def test_http_dates_are_read_and_a_past_or_absurd_date_is_not_a_wait():
    clock = FakeClock()
    assert parse_retry_after(email.utils.formatdate(clock.now + 30, usegmt=True), now=clock.time) == pytest.approx(30)
    assert parse_retry_after(email.utils.formatdate(clock.now - 30, usegmt=True), now=clock.time) == 0.0
    assert parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now=clock.time) is None


@pytest.mark.parametrize(
    "value",
    ["-5", "NaN", "inf", "abc", "0", "99999999999", "Wed, 21 Oct 2015 07:28:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT"],
)
@pytest.mark.parametrize("status", [429, 503])
def test_a_retry_after_that_gives_no_usable_wait_falls_back_to_the_jittered_backoff(value, status):
    policy = RetryPolicy(max_attempts=4, backoff_initial=1.0, backoff_max=8.0, deadline=100)
    s, session, clock = sender([(status, value), (status, value), (status, value), 200], policy)

    assert s.send("GET", "https://x.test/a", operation="op").status_code == 200

    assert session.calls == 4
    for slept, ceiling in zip(clock.sleeps, [1, 2, 4], strict=True):
        assert ceiling / 2 <= slept <= ceiling  # never 0, never the header's value


def test_the_backoff_fallback_still_keeps_the_deadline():
    # the first backoff (1-2 s) fits in 2.9 s; the first two (at least 1 + 2 s) never do, whatever the jitter
    policy = RetryPolicy(max_attempts=10, backoff_initial=2.0, backoff_max=8.0, deadline=2.9)
    s, session, clock = sender([(503, "NaN")] * 10, policy)

    assert s.send("GET", "https://x.test/a", operation="op").status_code == 503
    assert clock.now - 1000.0 <= 2.9 and session.calls == 2


def test_an_answer_cut_short_is_retried_like_a_dropped_connection():
    cut = requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead")
    s, session, clock = sender([cut, 200], RetryPolicy(backoff_initial=1.0, backoff_max=1.0))

    assert s.send("GET", "https://x.test/a", operation="op").status_code == 200
    assert session.calls == 2 and 0.5 <= clock.sleeps[0] <= 1.0


def test_an_answer_cut_short_is_not_retried_for_a_call_that_is_not_idempotent():
    cut = requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead")
    s, session, _ = sender([cut, 200])

    with pytest.raises(TransportFailure, match="answer cut short"):
        s.send("POST", "https://x.test/a", operation="op", idempotent=False)
    assert session.calls == 1
