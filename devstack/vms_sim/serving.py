"""Serving a stream over HTTP: Content-Length or chunked, byte ranges (or a server that ignores them), a
per-connection rate cap, trickle and mid-stream drops."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

from flask import Request, Response

from .faults import DownloadBehaviour
from .streams import Stream

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)
TRICKLE_TICK_SECONDS = 0.1


class Unsatisfiable(Exception):
    pass


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive byte range asked for, None for the whole stream; Unsatisfiable past the end.

    Multiple ranges and malformed headers are ignored (the whole stream is served), as RFC 9110 allows.
    """
    match = _RANGE.match(header or "")
    if not match or (not match[1] and not match[2]):
        return None
    first, last = match[1], match[2]
    if not first:  # suffix range: the last N bytes
        length = int(last)
        if length == 0 or size == 0:
            raise Unsatisfiable
        return max(size - length, 0), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if last and int(last) < start:
        return None
    if start >= size:
        raise Unsatisfiable
    return start, end


def body_pieces(
    stream: Stream,
    start: int,
    end: int,
    behaviour: DownloadBehaviour,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[bytes]:
    """Bytes [start, end) as served: paced by a trickle or the rate cap, cut off by a drop."""
    sent = 0
    limit = behaviour.drop_after_bytes
    trickle = behaviour.trickle_bytes_per_second
    cap = behaviour.max_bytes_per_second
    began = clock()
    for piece in stream.iter_range(start, end):
        if limit is not None and sent + len(piece) >= limit:
            piece = piece[: limit - sent]
        pieces = [piece]
        if trickle:
            step = max(int(trickle * TRICKLE_TICK_SECONDS), 1)
            pieces = [piece[i : i + step] for i in range(0, len(piece), step)]
        for part in pieces:
            if trickle:
                sleep(len(part) / trickle)
            if cap:  # a CDN's per-connection rate: never ahead of `cap` bytes per second since the start
                ahead = began + (sent + len(part)) / cap - clock()
                if ahead > 0:
                    sleep(ahead)
            if part:
                yield part
            sent += len(part)
        if limit is not None and sent >= limit:
            # werkzeug treats a ConnectionError as a dropped connection: it stops writing and closes
            # the socket, so the client sees a short body (or a chunked stream without its last chunk)
            raise ConnectionAbortedError("simulated mid-stream drop")


def stream_response(
    request: Request,
    stream: Stream,
    behaviour: DownloadBehaviour,
    *,
    content_type: str,
    headers: dict[str, str] | None = None,
) -> Response:
    size = stream.size
    common = {**({} if behaviour.ignore_range else {"Accept-Ranges": "bytes"}), **(headers or {})}
    try:
        wanted = None if behaviour.ignore_range else parse_range(request.headers.get("Range"), size)
    except Unsatisfiable:
        return Response(status=416, headers={**common, "Content-Range": f"bytes */{size}"})
    start, end = (0, size - 1) if wanted is None else wanted
    response = Response(
        body_pieces(stream, start, end + 1, behaviour),
        status=200 if wanted is None else 206,
        mimetype=content_type,
        headers=common,
        direct_passthrough=True,
    )
    if wanted is not None:
        response.headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    if not behaviour.chunked:
        response.headers["Content-Length"] = str(end + 1 - start)
    return response
