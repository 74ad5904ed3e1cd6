"""Was the request sent? Told by the exception's type, over real loopback sockets: a request that never
left may be repeated even when it must not run twice; one that left and got no answer may not."""

import socket
import threading

import pytest
import requests

from shared.http.retry import RetryingSender, RetryPolicy, Timeouts, TransportFailure, may_have_been_sent
from shared.http.session import pooled_session

POLICY = RetryPolicy(max_attempts=3, backoff_initial=0.001, backoff_max=0.002, deadline=30)


def transport() -> RetryingSender:
    return RetryingSender(pooled_session(), POLICY, Timeouts(connect=2, read=2), sleep=lambda _: None)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class HangUp:
    """Accepts each connection, reads the request, and closes it without a word."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.requests = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            with connection:
                if connection.recv(65536):
                    self.requests += 1

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def hang_up():
    server = HangUp()
    yield server
    server.close()


def test_a_refused_connection_is_retried_even_for_a_request_that_must_not_run_twice():
    with pytest.raises(TransportFailure, match=r"connection failed after 3 attempt\(s\)"):
        transport().send("POST", f"http://127.0.0.1:{closed_port()}/token", operation="refresh", idempotent=False)


def test_a_request_that_reached_the_server_is_not_repeated_when_it_must_not_run_twice(hang_up):
    with pytest.raises(TransportFailure, match=r"after 1 attempt\(s\)"):
        transport().send("POST", f"http://127.0.0.1:{hang_up.port}/token", operation="refresh", idempotent=False)
    assert hang_up.requests == 1


def test_an_idempotent_request_whose_answer_was_lost_is_repeated(hang_up):
    with pytest.raises(TransportFailure, match=r"after 3 attempt\(s\)"):
        transport().send("GET", f"http://127.0.0.1:{hang_up.port}/jobs", operation="list")
    assert hang_up.requests == 3


def test_the_message_text_decides_nothing():
    assert may_have_been_sent(requests.ConnectionError("[Errno 111] Connection refused"))
    assert not may_have_been_sent(requests.ConnectTimeout("anything at all"))
