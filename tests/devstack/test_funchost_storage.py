"""funchost: the queue message codec (host.json messageEncoding) and secret redaction in logs."""

from __future__ import annotations

import base64

import pytest

from devstack.funchost.storage import MessageDecodeError, decode_body, encode_body, redact


def test_base64_round_trip_and_binary_bodies() -> None:
    for body in (b"", b'{"a": 1}', bytes(range(256))):
        assert decode_body(encode_body(body, "base64"), "base64") == body
    assert decode_body(" eyJh\nIjogMX0= ", "base64") == b'{"a": 1}'  # whitespace is ignored, as in .NET


@pytest.mark.parametrize("text", ["not base64!", '{"a": 1}', "abc", "YWJj=", "YW Jj\x00"])
def test_invalid_base64_is_rejected_strictly(text: str) -> None:
    with pytest.raises(MessageDecodeError):
        decode_body(text, "base64")


def test_encoding_none_passes_text_through() -> None:
    assert decode_body("plain {text}", "none") == b"plain {text}"
    assert encode_body("héllo".encode(), "none") == "héllo"
    assert encode_body(b"x", "base64") == base64.b64encode(b"x").decode()


def test_redact_hides_keys_and_signatures() -> None:
    text = redact("failed: AccountKey=abc/def==;QueueEndpoint=x https://a/q?sv=1&sig=s%2Fecret&se=2")
    assert "abc/def" not in text and "s%2Fecret" not in text
    assert "AccountKey=REDACTED" in text and "sig=REDACTED&se=2" in text
