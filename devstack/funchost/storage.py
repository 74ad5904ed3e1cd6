"""Storage clients for the host, and the queue message encoding of host.json `messageEncoding`.

The host receives raw message text and decodes Base64 itself, one message at a time: the SDK's
decode policy raises from inside the receive call and would lose the whole batch, while the real
host (Storage Queues extension 5.x) handles an undecodable message on its own (see queues.py).
On the wire this is the same as QueueClient with TextBase64EncodePolicy / BinaryBase64DecodePolicy.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from typing import Any

import requests
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline.transport import RequestsTransport
from azure.storage.blob import BlobServiceClient
from azure.storage.blob import LinearRetry as BlobRetry
from azure.storage.queue import LinearRetry as QueueRetry
from azure.storage.queue import QueueClient
from requests.adapters import HTTPAdapter

_RETRY: dict[str, Any] = {"backoff": 0.8, "random_jitter_range": 0.4, "retry_total": 3}
"""About what the real host's .NET storage clients do (0.8 s, three times), not the Python SDK's default
first wait of 15 s: Azurite resets idle keep-alive connections, and a 15-s stall in the host's queue
listener or timer lease is an artifact no deployed agent sees."""
_CLIENT_OPTIONS: dict[str, Any] = {"connection_timeout": 10, "read_timeout": 60}
_WHITESPACE = str.maketrans("", "", " \t\r\n")
_SECRETS = re.compile(r"((?:sig|AccountKey|SharedAccessSignature)=)[^&;\s\"']+", re.IGNORECASE)


class MessageDecodeError(ValueError):
    """A message body is not valid Base64 although host.json expects Base64."""


def queue_client(connection_string: str, queue_name: str) -> QueueClient:
    """A client that sends and receives message text unchanged (the codec below does the encoding).

    The real host is a .NET process: its queue traffic costs the Python worker nothing. This one shares
    the worker's process, so it at least does not read the environment at every request (a local host
    needs no proxy; see shared/http/session.py for what that costs)."""
    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_maxsize=16))  # the worker's threads renew and delete at once
    session.mount("https://", HTTPAdapter(pool_maxsize=16))
    transport = RequestsTransport(
        session=session,
        session_owner=False,
        use_env_settings=False,
        connection_timeout=10,
        read_timeout=60,
        connection_verify=os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True,
    )
    return QueueClient.from_connection_string(
        connection_string, queue_name, transport=transport, retry_policy=QueueRetry(**_RETRY)
    )


def blob_service(connection_string: str) -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(
        connection_string, retry_policy=BlobRetry(**_RETRY), **_CLIENT_OPTIONS
    )


def probe_service(connection_string: str) -> BlobServiceClient:
    """A client that fails fast (no retries, short timeouts): to check the account is there at all."""
    return BlobServiceClient.from_connection_string(
        connection_string, retry_total=0, connection_timeout=3, read_timeout=5
    )


def decode_body(text: str, encoding: str) -> bytes:
    """The message body as the function sees it; strict Base64 like .NET's Convert.FromBase64String."""
    if encoding == "none":
        return text.encode("utf-8")
    compact = text.translate(_WHITESPACE)
    try:
        if len(compact) % 4:
            raise ValueError("length is not a multiple of 4")
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as error:
        raise MessageDecodeError("message body is not valid Base64") from error


def encode_body(body: bytes, encoding: str) -> str:
    if encoding == "none":
        return body.decode("utf-8")
    return base64.b64encode(body).decode("ascii")


def redact(error: object) -> str:
    """An error's text for a log line, without SAS signatures or account keys."""
    return _SECRETS.sub(r"\1REDACTED", str(error))


def error_code(error: HttpResponseError) -> str:
    """The storage error code (e.g. 'MessageNotFound', 'PopReceiptMismatch', 'LeaseAlreadyPresent')."""
    return str(getattr(error, "error_code", None) or "")
