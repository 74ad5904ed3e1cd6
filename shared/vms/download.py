"""Streaming downloads that survive a dropped connection without ever passing on a truncated file.

After a drop (or a body shorter than its Content-Length) the download resumes with `Range: bytes=N-`
where the server accepts ranges, and checks that the server really resumed at N. Where it cannot
resume, it raises VmsTransient: the bytes already handed out cannot be taken back, so the caller must
abandon this file (its upload is never committed) and fetch it again.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator

import requests

from shared.vms.base import DownloadStream
from shared.vms.errors import VmsTransient, VmsVendorError

log = logging.getLogger(__name__)

CHUNK_SIZE = 1024 * 1024
MAX_RESUMES = 5
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")

OpenResponse = Callable[[int], requests.Response]
"""Opens the download at a byte offset: status 200 for offset 0, 206 with Content-Range otherwise."""

_DROPS = (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError, requests.exceptions.Timeout)


class ResumableDownload(DownloadStream):
    def __init__(
        self,
        open_response: OpenResponse,
        *,
        vendor: str,
        what: str,
        chunk_size: int = CHUNK_SIZE,
        max_resumes: int = MAX_RESUMES,
    ) -> None:
        self._open = open_response
        self._vendor = vendor
        self._what = what
        self._chunk_size = chunk_size
        self._max_resumes = max_resumes
        self._response = open_response(0)
        self.content_length = _total_length(self._response)
        self.resumes = 0
        self.received = 0

    def __iter__(self) -> Iterator[bytes]:
        while True:
            try:
                for chunk in self._response.iter_content(self._chunk_size):
                    self.received += len(chunk)
                    yield chunk
            except _DROPS as exc:
                self._resume(f"connection dropped ({type(exc).__name__})")
                continue
            if self.content_length is None or self.received == self.content_length:
                return
            if self.received > self.content_length:
                raise VmsVendorError(
                    f"{self._what}: received {self.received} bytes, more than the announced {self.content_length}",
                    vendor=self._vendor,
                )
            self._resume("body ended early")

    def _resume(self, reason: str) -> None:
        self._response.close()
        if self.received == 0 and self.resumes < self._max_resumes:
            self.resumes += 1
            log.warning("%s: %s before any byte; starting again", self._what, reason)
            self._response = self._open(0)
            return
        if not _accepts_ranges(self._response):
            raise VmsTransient(
                f"{self._what}: {reason} after {self.received} bytes and the server cannot resume; fetch it again",
                vendor=self._vendor,
            )
        if self.resumes >= self._max_resumes:
            raise VmsTransient(
                f"{self._what}: {reason} after {self.received} bytes; gave up after {self.resumes} resumes",
                vendor=self._vendor,
            )
        self.resumes += 1
        log.warning(
            "%s: %s after %d bytes; resuming with a Range request (%d/%d)",
            self._what,
            reason,
            self.received,
            self.resumes,
            self._max_resumes,
        )
        response = self._open(self.received)
        start = _range_start(response)
        if response.status_code != 206 or start != self.received:
            response.close()
            raise VmsTransient(
                f"{self._what}: the server did not resume at byte {self.received} "
                f"(HTTP {response.status_code}, range start {start}); fetch it again",
                vendor=self._vendor,
            )
        self._response = response

    def close(self) -> None:
        self._response.close()


def _accepts_ranges(response: requests.Response) -> bool:
    return response.headers.get("Accept-Ranges", "").lower() == "bytes" or response.status_code == 206


def _range_start(response: requests.Response) -> int | None:
    match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None


def _total_length(response: requests.Response) -> int | None:
    """The whole file's length: from Content-Range on a 206, else Content-Length (None when chunked)."""
    match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
    if match and match.group(3) != "*":
        return int(match.group(3))
    length = response.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None
