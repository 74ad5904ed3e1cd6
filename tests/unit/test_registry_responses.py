"""Responses the simulator never sends (it is correct): malformed bodies must be clear protocol errors.

These are mocked at the HTTP level with a requests transport adapter that answers canned responses.
"""

from __future__ import annotations

import json

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from requests.adapters import BaseAdapter

from shared.crypto.jwk import private_jwk
from shared.http.retry import RetryPolicy
from shared.registry.client import RegistryClient
from shared.registry.connection_file import parse_connection_file
from shared.registry.errors import LockConflict, RegistryProtocolError


class CannedAdapter(BaseAdapter):
    """Answers the token request, then each API call with the next canned (status, body)."""

    def __init__(self, answers: list[tuple[int, object]]) -> None:
        super().__init__()
        self.answers = list(answers)

    def send(self, request, **kwargs):
        response = requests.Response()
        response.request, response.url = request, request.url
        if request.url.endswith("/connect/token"):
            status, body = 200, {"access_token": "t0k3n", "token_type": "Bearer", "expires_in": 3600}
        else:
            status, body = self.answers.pop(0)
        response.status_code = status
        response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
        response.headers["Content-Type"] = "application/json"
        return response

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def connection():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return parse_connection_file(
        json.dumps(
            {
                "TenantId": "t",
                "ServicePrincipalId": "sp",
                "ServicePrincipalKey": private_jwk(key, "k"),
                "SecurityTokenServiceBaseAddresses": ["https://sts.test/connect"],
                "ApiBaseAddresses": ["https://api.test"],
            }
        )
    )


def client_answering(connection, *answers: tuple[int, object]) -> RegistryClient:
    session = requests.Session()
    session.mount("https://", CannedAdapter(list(answers)))
    return RegistryClient(connection, "agent", session=session, retry=RetryPolicy(max_attempts=1))


def test_a_lock_response_without_a_lock_token_is_a_protocol_error_naming_the_field(connection):
    client = client_answering(connection, (200, {"JobId": "j", "LockExpirationUtc": "2026-11-24T06:00:00Z"}))
    with pytest.raises(RegistryProtocolError, match="LockToken"):
        client.lock("j")


def test_camel_case_responses_and_unknown_fields_are_accepted(connection):
    body = {"jobId": "j", "lockToken": "abc", "lockExpirationUtc": "2026-11-24T06:00:00Z", "extra": 1}
    lock = client_answering(connection, (200, body)).lock("j")
    assert lock.lock_token == "abc" and lock.lock_expiration_utc.tzinfo is not None


def test_a_body_that_is_not_json_is_a_protocol_error(connection):
    with pytest.raises(RegistryProtocolError, match="not JSON"):
        client_answering(connection, (200, b"<html>gateway</html>")).lock("j")


def test_a_job_list_that_is_not_an_array_is_a_protocol_error(connection):
    with pytest.raises(RegistryProtocolError, match="JSON array"):
        client_answering(connection, (200, {"Jobs": []})).list_jobs()


def test_one_unreadable_job_is_skipped_and_the_others_are_returned(connection, caplog):
    jobs = [{"Id": "a", "Type": "discovery"}, {"Type": "thumbnail"}, {"id": "c", "type": "thumbnail"}]
    assert [j.id for j in client_answering(connection, (200, jobs)).list_jobs()] == ["a", "c"]
    assert "Skipping unreadable job #1" in caplog.text


def test_an_undocumented_status_is_a_protocol_error_and_409_on_lock_a_conflict(connection):
    with pytest.raises(RegistryProtocolError, match="HTTP 418"):
        client_answering(connection, (418, {"title": "teapot"})).lock("j")
    with pytest.raises(LockConflict, match="held elsewhere"):
        client_answering(connection, (409, {"detail": "held elsewhere"})).lock("j")
