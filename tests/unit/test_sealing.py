"""Sealed values: AES-256-GCM under a named key, bound to their purpose and place; plain text passes through."""

from __future__ import annotations

import json

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.crypto.jwk import private_jwk
from shared.failures import Disposition, disposition_of
from shared.registry.connection_file import parse_connection_file
from shared.secrets.keyring import _key_vault_call
from shared.secrets.lock_tokens import lock_token_sealer
from shared.secrets.sealing import (
    KeyAccessDenied,
    KeyUnavailable,
    SealedValueUnreadable,
    Sealer,
    StaticKey,
    derived_key,
    is_sealed,
)

SECRET = "refresh-token-4f9d2c81"


def sealer(key: bytes = b"k" * 32, key_id: str = "one", purpose: str = "test") -> Sealer:
    return Sealer(StaticKey(key_id, key), purpose)


def test_a_sealed_value_opens_in_its_place_and_shows_nothing_of_the_secret():
    sealed = sealer().seal(SECRET, "table/row/RefreshToken")
    assert is_sealed(sealed) and sealed.startswith("sealed:v1:one:")
    assert SECRET not in sealed and sealed != sealer().seal(SECRET, "table/row/RefreshToken")  # fresh nonce
    assert sealer().open(sealed, "table/row/RefreshToken") == SECRET


def test_a_sealed_value_moved_to_another_row_column_or_purpose_does_not_open():
    sealed = sealer().seal(SECRET, "table/row-a/RefreshToken")
    for other in ("table/row-b/RefreshToken", "table/row-a/AccessToken", "other/row-a/RefreshToken"):
        with pytest.raises(SealedValueUnreadable) as raised:
            sealer().open(sealed, other)
        assert SECRET not in str(raised.value)
    with pytest.raises(SealedValueUnreadable):
        sealer(purpose="lock token").open(sealed, "table/row-a/RefreshToken")


def test_an_altered_value_or_another_key_does_not_open():
    sealed = sealer().seal(SECRET, "ctx")
    body = sealed.rsplit(":", 1)[1]
    flipped = sealed[: -len(body)] + ("A" if body[0] != "A" else "B") + body[1:]
    for bad in (flipped, sealed[:-4], "sealed:v1:one:!!!", "sealed:v1::"):
        with pytest.raises(SealedValueUnreadable):
            sealer().open(bad, "ctx")
    with pytest.raises(SealedValueUnreadable):
        sealer(key=b"x" * 32).open(sealed, "ctx")  # same key id, other key
    with pytest.raises(SealedValueUnreadable, match="not the current one"):
        sealer(key_id="two").open(sealed, "ctx")  # a key this source does not have
    assert disposition_of(SealedValueUnreadable("x")) is Disposition.MISCONFIGURED


def test_plain_text_written_before_sealing_reads_as_it_is():
    assert not is_sealed(SECRET)
    assert sealer().open(SECRET, "ctx") == SECRET
    assert sealer().open("", "ctx") == ""


def test_derived_keys_differ_by_purpose_and_their_id_reveals_nothing():
    one, other = derived_key(b"s" * 64, "lock token"), derived_key(b"s" * 64, "something else")
    assert one.current()[1] != other.current()[1]
    assert one.current()[0].startswith("d-") and one.current()[0] == derived_key(b"s" * 64, "lock token").current()[0]


def _connection() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return json.dumps(
        {
            "TenantId": "t",
            "ServicePrincipalId": "sp",
            "ServicePrincipalKey": private_jwk(key, "k1"),
            "SecurityTokenServiceBaseAddresses": ["https://sts.example"],
            "ApiBaseAddresses": ["https://api.example"],
        }
    )


def test_lock_tokens_open_with_the_same_connection_file_only():
    text = _connection()
    sealed = lock_token_sealer(parse_connection_file(text)).seal("lock-token-1", "job/j1/LockToken")
    assert lock_token_sealer(parse_connection_file(text)).open(sealed, "job/j1/LockToken") == "lock-token-1"
    with pytest.raises(SealedValueUnreadable):
        lock_token_sealer(parse_connection_file(_connection())).open(sealed, "job/j1/LockToken")


def _http_error(status: int) -> HttpResponseError:
    error = HttpResponseError(message=f"status {status}")
    error.status_code = status
    return error


@pytest.mark.parametrize(
    ("error", "expected", "disposition"),
    [
        (_http_error(429), KeyUnavailable, Disposition.RETRY_LATER),
        (_http_error(503), KeyUnavailable, Disposition.RETRY_LATER),
        (ServiceRequestError("connection refused"), KeyUnavailable, Disposition.RETRY_LATER),
        (_http_error(403), KeyAccessDenied, Disposition.MISCONFIGURED),
        (_http_error(404), KeyAccessDenied, Disposition.MISCONFIGURED),
        (ClientAuthenticationError("no identity"), KeyAccessDenied, Disposition.MISCONFIGURED),
    ],
)
def test_key_vault_answers_become_retry_later_or_misconfigured_never_cancel(error, expected, disposition):
    def call() -> None:
        raise error

    with pytest.raises(expected) as raised:
        _key_vault_call(call)
    assert disposition_of(raised.value) is disposition
