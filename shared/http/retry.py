"""One retry policy for every outbound HTTP call.

Rules: 429 and 503 wait for the server's `Retry-After` when it gives a usable one; other 5xx, connection
errors, timeouts and answers cut short back off exponentially with jitter; nothing else is retried.
Attempts are bounded *and* the whole call has a deadline, so a caller always gets an answer in bounded
time. A retry never goes out without a wait: a `Retry-After` that is negative, NaN, infinite,
unparseable, absurdly large (over a day) or zero (or a date already past) falls back to the backoff.
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import requests
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError

from shared.redact import redact_url
from shared.telemetry.metrics import http_answer
from shared.telemetry.tracing import dependency, mark_failed, set_status_code

log = logging.getLogger(__name__)

RETRY_AFTER_STATUSES = frozenset({429, 503})
BACKOFF_STATUSES = frozenset({500, 502, 504})
MAX_RETRY_AFTER_SECONDS = 86_400.0
"""A longer wait is not a server's considered answer (a daily quota resets within a day): treated as unreadable."""
_DELAY_SECONDS = re.compile(r"\d{1,15}(\.\d{1,9})?")
"""RFC 9110 delay-seconds (digits), leniently with a fraction; never a sign, exponent, NaN or infinity."""


@dataclass(frozen=True)
class Timeouts:
    """Seconds to wait for a TCP connection and for each read from the socket."""

    connect: float = 5.0
    read: float = 30.0

    def as_requests(self) -> tuple[float, float]:
        return (self.connect, self.read)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    backoff_initial: float = 0.5
    backoff_max: float = 15.0
    deadline: float = 60.0
    """Total seconds one call may take, retries and waits included."""

    def backoff(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Delay after failed attempt number `attempt` (1-based): exponential, capped, 50-100 % jitter."""
        ceiling = min(self.backoff_max, self.backoff_initial * 2.0 ** (attempt - 1))
        return ceiling * (0.5 + rand() / 2)


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or HTTP-date), never negative; None when absent,
    unreadable (`-5`, `NaN`, `inf`, `abc`) or over MAX_RETRY_AFTER_SECONDS."""
    if not value or not value.strip():
        return None
    value = value.strip()
    if _DELAY_SECONDS.fullmatch(value):
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = max(0.0, when.timestamp() - now())
    return seconds if seconds <= MAX_RETRY_AFTER_SECONDS else None


class TransportFailure(Exception):
    """No HTTP response could be had (connection refused or reset, timeouts) within the retry budget."""

    def __init__(self, operation: str, detail: str) -> None:
        super().__init__(f"{operation}: {detail}")
        self.operation = operation
        self.detail = detail


class RetryingSender:
    """Sends requests on one pooled session and applies the RetryPolicy.

    Returns the final response whatever its status (the caller maps statuses to its own errors);
    raises TransportFailure when no response came back within the budget.
    """

    def __init__(
        self,
        session: requests.Session,
        policy: RetryPolicy,
        timeouts: Timeouts,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        service: str = "HTTP",
    ) -> None:
        self.session = session
        self.service = service
        """What the calls are to, for dependency spans and metrics: "Registry" or "VMS"."""
        self.policy = policy
        self.timeouts = timeouts
        self._sleep = sleep
        self._clock = clock

    def send(
        self,
        method: str,
        url: str,
        *,
        operation: str,
        idempotent: bool = True,
        final_statuses: frozenset[int] = frozenset(),
        **kwargs: Any,
    ) -> requests.Response:
        """Send with retries. `idempotent=False` (e.g. a rotating-token refresh) retries only what cannot
        have been processed: connect failures, and 429/503 (the server said it did not act).
        `final_statuses` are answers that mean something else on this route (EEN: 503 = camera offline)."""
        started = self._clock()
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._request(method, url, operation, kwargs)
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                reason = _describe_transport_error(exc)
                delay = self.policy.backoff(attempt)
                if (may_have_been_sent(exc) and not idempotent) or not self._may_retry(attempt, started, delay):
                    raise TransportFailure(
                        operation, f"{reason} after {attempt} attempt(s) to {redact_url(url)}"
                    ) from None
                log.warning(
                    "%s: %s; retrying in %.1f s (attempt %d/%d)",
                    operation,
                    reason,
                    delay,
                    attempt,
                    self.policy.max_attempts,
                    extra={"operation": operation, "attempt": attempt},
                )
                self._sleep(delay)
                continue

            wait = None if response.status_code in final_statuses else self._delay_for(response, attempt)
            if wait is None or (not idempotent and response.status_code not in RETRY_AFTER_STATUSES):
                return response
            delay = wait
            if not self._may_retry(attempt, started, delay):
                return response
            response.close()
            log.warning(
                "%s: HTTP %d; retrying in %.1f s (attempt %d/%d)",
                operation,
                response.status_code,
                delay,
                attempt,
                self.policy.max_attempts,
                extra={"operation": operation, "attempt": attempt, "status": response.status_code},
            )
            self._sleep(delay)

    def _request(self, method: str, url: str, operation: str, kwargs: dict[str, Any]) -> requests.Response:
        """One attempt, as a dependency span; 429 and 5xx answers are counted by service."""
        with dependency(self.service, operation, method, url) as span:
            try:
                response = self.session.request(method, url, timeout=self.timeouts.as_requests(), **kwargs)
            except requests.RequestException as exc:
                mark_failed(span, type(exc).__name__)
                raise
            set_status_code(span, response.status_code)
        http_answer(self.service, response.status_code)
        return response

    def _delay_for(self, response: requests.Response, attempt: int) -> float | None:
        status = response.status_code
        if status in RETRY_AFTER_STATUSES:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is None or retry_after <= 0:  # no usable wait from the server: never retry at once
                return self.policy.backoff(attempt)
            return retry_after
        if status in BACKOFF_STATUSES:
            return self.policy.backoff(attempt)
        return None

    def _may_retry(self, attempt: int, started: float, delay: float) -> bool:
        if attempt >= self.policy.max_attempts:
            return False
        return self._clock() + delay - started <= self.policy.deadline


def may_have_been_sent(exc: requests.RequestException) -> bool:
    """False only when the connection itself was never made (refused, unresolvable host, connect timeout):
    then the server cannot have seen the request. Told by the exception's type, never by its message."""
    if isinstance(exc, requests.ConnectTimeout):
        return False
    # requests wraps urllib3's MaxRetryError, whose `reason` says what failed; NewConnectionError (refused,
    # name resolution) is a ConnectTimeoutError in urllib3.
    wrapped = exc.args[0] if exc.args else None
    return not (isinstance(wrapped, MaxRetryError) and isinstance(wrapped.reason, ConnectTimeoutError))


def _describe_transport_error(exc: Exception) -> str:
    """A short, secret-free description (requests' messages embed the full URL, SAS included)."""
    if isinstance(exc, requests.ConnectTimeout):
        return "connect timeout"
    if isinstance(exc, requests.ReadTimeout):
        return "read timeout"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS error"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "answer cut short"
    if isinstance(exc, requests.ConnectionError):
        return "connection failed"
    return type(exc).__name__
