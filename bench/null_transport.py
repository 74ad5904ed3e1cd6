"""An azure-core transport that answers every storage request with success without a network.

It consumes the request body as a real transport would, so that the client-side cost (our encryption
and the SDK's pipeline) is measured alone, without Azurite or the network in the way.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from azure.core.pipeline.transport import HttpRequest, HttpResponse, HttpTransport

_HEADERS = {
    "ETag": '"0x8DCNULL"',
    "Last-Modified": "Tue, 24 Nov 2026 05:00:00 GMT",
    "Date": "Tue, 24 Nov 2026 05:00:00 GMT",
    "x-ms-request-id": "00000000-0000-0000-0000-000000000000",
    "x-ms-version": "2025-01-05",
    "x-ms-request-server-encrypted": "true",
    "Content-Length": "0",
}


class _NullResponse(HttpResponse):
    def __init__(self, request: HttpRequest) -> None:
        super().__init__(request, None)
        self.status_code = 201
        self.reason = "Created"
        self.headers = dict(_HEADERS)
        self.content_type = None

    def body(self) -> bytes:
        return b""

    def stream_download(self, pipeline: Any, **kwargs: Any) -> Iterator[bytes]:
        return iter(())


class NullTransport(HttpTransport):
    """Counts what would have been sent; sends nothing."""

    def __init__(self) -> None:
        self.requests = 0
        self.bytes_sent = 0

    def __enter__(self) -> NullTransport:
        return self

    def __exit__(self, *args: object) -> None:
        return None

    def open(self) -> None:
        return None

    def close(self) -> None:
        return None

    def send(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        self.requests += 1
        self.bytes_sent += _consume(request.data if request.data is not None else request.body)
        return _NullResponse(request)


def _consume(body: Any) -> int:
    if body is None:
        return 0
    if isinstance(body, (bytes, bytearray, memoryview, str)):
        return len(body)
    read = getattr(body, "read", None)
    if read is not None:
        total = 0
        while chunk := read(4 * 1024 * 1024):
            total += len(chunk)
        return total
    return sum(len(chunk) for chunk in body)
