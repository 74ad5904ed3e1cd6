"""The one send path of every outbound client (Registry, EEN, Rhombus, Verkada).

A call goes out with its credential attached (auth.py), under the shared retry policy (retry.py); a
refused credential (401, or what the Auth says) is renewed and the call sent exactly once more; and
the answer that is not a success becomes the caller's own error, through the one status mapping of its
boundary (`Failures`). The same loop as httpx's `Auth.auth_flow` and azure-core's bearer-token policy,
written once here instead of in each client.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import requests

from shared.http.auth import NO_AUTH, Auth, OutgoingRequest
from shared.http.retry import RetryingSender, TransportFailure, parse_retry_after

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Call:
    """One operation as its boundary names it, and what it is about (a job id, a camera id)."""

    operation: str
    subject: str | None = None


class Failures(Protocol):
    """How a boundary names a failed call: one status mapping per boundary or vendor style."""

    def unreachable(self, call: Call, failure: TransportFailure) -> Exception:
        """No answer within the retry budget."""
        ...

    def error_for(self, call: Call, response: requests.Response) -> Exception | None:
        """The error an answer means, or None when it is a success."""
        ...


@dataclass(frozen=True)
class Cooldown:
    """A vendor's fixed pause after a 429 (Verkada: 5 s), waited out at most `waits` times per attempt,
    on top of the retry policy (which then treats 429 as an answer). A `Retry-After` longer than the pause wins."""

    seconds: float
    waits: int
    sleep: Callable[[float], None] = time.sleep


class AuthenticatedSender:
    """Thread-safe: share one per client (all of a client's senders may share one RetryingSender)."""

    def __init__(
        self,
        transport: RetryingSender,
        failures: Failures,
        auth: Auth = NO_AUTH,
        *,
        log_prefix: str = "",
        default_headers: Mapping[str, str] | None = None,
        cooldown: Cooldown | None = None,
    ) -> None:
        self.transport = transport
        self.failures = failures
        self.auth = auth
        self._log_prefix = log_prefix
        self._default_headers = dict(default_headers or {})
        self._cooldown = cooldown

    @property
    def session(self) -> requests.Session:
        return self.transport.session

    def send(
        self,
        method: str,
        url: str,
        call: Call,
        *,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = True,
        final_statuses: frozenset[int] = frozenset(),
        **kwargs: Any,
    ) -> requests.Response:
        """The successful response (the caller closes it); raises the boundary's error otherwise.

        `idempotent` and `final_statuses` are passed to the retry policy (see RetryingSender.send)."""
        renewals = 1 if self.auth.renew_on else 0
        while True:
            request = OutgoingRequest(url, {**self._default_headers, **(headers or {})})
            credential = self.auth.attach(request)
            try:
                response = self._send_once(method, request, call, idempotent, final_statuses, kwargs)
            except TransportFailure as failure:
                raise self.failures.unreachable(call, failure) from None
            if response.status_code in self.auth.renew_on and renewals:
                renewals -= 1
                response.close()
                log.info("%s answered %d; renewing the credential once", self._name(call), response.status_code)
                self.auth.refused(credential)
                continue
            error = self.failures.error_for(call, response)
            if error is not None:
                response.close()
                raise error
            return response

    def _send_once(
        self,
        method: str,
        request: OutgoingRequest,
        call: Call,
        idempotent: bool,
        final_statuses: frozenset[int],
        kwargs: dict[str, Any],
    ) -> requests.Response:
        cooldown = self._cooldown
        if cooldown is not None:
            final_statuses = final_statuses | {429}
        waits = 0
        while True:
            response = self.transport.send(
                method,
                request.url,
                operation=self._name(call),
                idempotent=idempotent,
                final_statuses=final_statuses,
                headers=request.headers,
                **kwargs,
            )
            if cooldown is None or response.status_code != 429 or waits >= cooldown.waits:
                return response
            waits += 1
            delay = max(cooldown.seconds, parse_retry_after(response.headers.get("Retry-After")) or 0.0)
            response.close()
            log.warning("%s: rate limited (429); cooling down %.1f s", self._name(call), delay)
            cooldown.sleep(delay)

    def _name(self, call: Call) -> str:
        return self._log_prefix + call.operation
