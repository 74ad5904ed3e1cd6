"""Response transforms: reshape the answer to a Registry call the way a broken server or proxy would.

A transform is armed for one operation (optionally one job) and fires by its Trigger. It can rename or
drop JSON fields at any depth, replace the body (an HTML error page, a body cut short with a matching
Content-Length, an empty body, or a connection that closes before the declared length), set any header
to any value (`Retry-After: -5`, `NaN`, an HTTP date…) or remove it, and change the status. With
`Processed: false` the call is not carried out at all: the answer is a problem document with `Status`,
then reshaped.

Field paths are dotted names from the top of the body. A name segment looks into an object; on a list
it applies to every element (so `Parameters.Cameras.CameraId` is every camera's id, and on the job list
`Id` is every job's id); a number segment picks one list element (`0.Id`); `**` matches any number of
levels (`**.LockToken` is every LockToken anywhere). Names match exactly (the simulator answers in
PascalCase).
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from flask import Response

from .bodies import Body
from .problems import ProblemError
from .triggers import Trigger

BODY_KINDS = ("Html", "Truncated", "Empty", "CutOff")
HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
    b"<body><h1>502 Bad Gateway</h1><p>The upstream server returned an invalid response.</p>\n"
    b"<hr><address>gateway</address></body></html>\n"
)
FORBIDDEN_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})

Action = Callable[[Any, Any], int]  # (container, key) -> how many changes


@dataclass
class ResponseTransform:
    id: int
    operation: str
    trigger: Trigger
    job_id: str | None = None
    status: int | None = None
    processed: bool = True
    rename: dict[str, str] = field(default_factory=dict)
    drop: list[str] = field(default_factory=list)
    body: str | None = None
    truncate_at: int | None = None
    content_type: str | None = None
    headers: dict[str, str | None] = field(default_factory=dict)

    def matches(self, operation: str, job_id: str | None) -> bool:
        return operation == self.operation and (self.job_id is None or self.job_id == job_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "Id": self.id, "Operation": self.operation, "JobId": self.job_id, **self.trigger.to_json(),
            "Status": self.status, "Processed": self.processed, "Rename": self.rename, "Drop": self.drop,
            "Body": self.body, "TruncateAt": self.truncate_at, "ContentType": self.content_type,
            "Headers": self.headers,
        }  # fmt: skip

    def apply(self, response: Response) -> tuple[Response, str]:
        """Reshapes `response`; returns the response to send and a one-line account for the job history."""
        notes: list[str] = []
        data = response.get_data()
        if self.rename or self.drop:
            data = self._reshape_json(data, notes)
        if self.status is not None:
            response.status_code = self.status
            notes.append(f"status {self.status}")
        cut_off = None
        if self.body == "Html":
            data = HTML_PAGE
            response.headers["Content-Type"] = "text/html; charset=utf-8"
            notes.append("HTML body")
        elif self.body == "Empty":
            data = b""
            notes.append("empty body")
        elif self.body in ("Truncated", "CutOff"):
            keep = len(data) // 2 if self.truncate_at is None else min(self.truncate_at, len(data))
            if self.body == "CutOff":
                cut_off = (data[:keep], len(data))
                notes.append(f"connection closed after {keep} of {len(data)} bytes")
            else:
                notes.append(f"body truncated to {keep} of {len(data)} bytes")
            data = data[:keep]
        if self.content_type is not None:
            response.headers["Content-Type"] = self.content_type
            notes.append(f"Content-Type {self.content_type!r}")
        response.set_data(data)
        for name, value in self.headers.items():
            if value is None:
                response.headers.pop(name, None)
                notes.append(f"header {name} removed")
            else:
                response.headers[name] = value
                notes.append(f"{name}: {value!r}")
        if cut_off is not None:
            response = _cut_off(response, *cut_off)
        return response, f"transform #{self.id}: " + (", ".join(notes) or "no change")

    def _reshape_json(self, data: bytes, notes: list[str]) -> bytes:
        try:
            document = json.loads(data) if data else None
        except ValueError:
            document = None
        if document is None:
            notes.append("no JSON body to reshape")
            return data
        for path, new_name in self.rename.items():
            changed = apply_path(document, split_path(path), _renamer(new_name))
            notes.append(f"renamed {path} → {new_name} ({changed})")
        for path in self.drop:
            changed = apply_path(document, split_path(path), _dropper)
            notes.append(f"dropped {path} ({changed})")
        return json.dumps(document, separators=(",", ":")).encode("utf-8")


def _cut_off(response: Response, sent: bytes, declared: int) -> Response:
    """The same status and headers, a Content-Length of `declared`, and a connection closed after `sent`."""

    def body() -> Iterator[bytes]:
        if sent:
            yield sent
        # werkzeug treats a ConnectionError as a dropped connection: it stops writing and closes the socket
        raise ConnectionAbortedError("simulated connection closed mid-body")

    cut = Response(body(), status=response.status_code)
    cut.headers.clear()
    for name, value in response.headers.items():
        if name.lower() != "content-length":
            cut.headers.add(name, value)
    cut.headers["Content-Length"] = str(declared)
    return cut


# -- field paths -----------------------------------------------------------------------------------------


def split_path(path: str) -> list[str]:
    segments = path.split(".")
    if not path or any(not segment for segment in segments):
        raise ValueError(f"bad field path {path!r}: use dotted names such as Parameters.Cameras.CameraId")
    if segments[-1] == "**":
        raise ValueError(f"bad field path {path!r}: '**' must be followed by a name")
    return segments


def _renamer(new_name: str) -> Action:
    def rename(container: Any, key: Any) -> int:
        if not isinstance(container, dict):
            return 0
        container[new_name] = container.pop(key)
        return 1

    return rename


def _dropper(container: Any, key: Any) -> int:
    del container[key]
    return 1


def apply_path(node: Any, segments: list[str], action: Action) -> int:
    """Applies `action(container, key)` to every place `segments` names in `node`; returns how many."""
    head, rest = segments[0], segments[1:]
    if head == "**":
        changed = apply_path(node, rest, action)
        children = list(node.values()) if isinstance(node, dict) else list(node) if isinstance(node, list) else []
        return changed + sum(apply_path(child, segments, action) for child in children)
    if isinstance(node, list):
        if head.isdigit():
            index = int(head)
            if index >= len(node):
                return 0
            return apply_path(node[index], rest, action) if rest else action(node, index)
        return sum(apply_path(item, segments, action) for item in list(node))
    if isinstance(node, dict) and head in node:
        return apply_path(node[head], rest, action) if rest else action(node, head)
    return 0


# -- the armed transforms --------------------------------------------------------------------------------


class TransformSet:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._transforms: list[ResponseTransform] = []
        self._ids = itertools.count(1)

    def add(self, body: Body, operations: tuple[str, ...]) -> ResponseTransform:
        transform = _parse(body, operations)
        with self._lock:
            transform.id = next(self._ids)
            self._transforms.append(transform)
        return transform

    def take(self, operation: str, job_id: str | None) -> ResponseTransform | None:
        """Counts this call for every matching transform; returns the oldest one that fires on it."""
        with self._lock:
            due = [t for t in self._transforms if t.matches(operation, job_id) and t.trigger.observe()]
            if not due:
                return None
            due[0].trigger.fire()
            return due[0]

    def to_json(self) -> list[dict[str, Any]]:
        with self._lock:
            return [t.to_json() for t in self._transforms]

    def remove(self, transform_id: int) -> bool:
        with self._lock:
            kept = [t for t in self._transforms if t.id != transform_id]
            removed, self._transforms = len(kept) != len(self._transforms), kept
            return removed

    def reset(self) -> None:
        with self._lock:
            self._transforms.clear()


def _parse(body: Body, operations: tuple[str, ...]) -> ResponseTransform:
    operation = body.required_string("Operation")
    if operation not in operations:
        raise ProblemError(400, f"Operation must be one of {', '.join(operations)}")
    job_id = body.string("JobId", required=False)
    status = None if body.raw("Status") is None else body.integer("Status", minimum=100)
    if status is not None and status > 599:
        raise ProblemError(400, "Status must be an HTTP status code")
    processed = body.raw("Processed")
    if processed is not None and not isinstance(processed, bool):
        raise ProblemError(400, "Processed must be true or false")
    if processed is False and status is None:
        raise ProblemError(400, "Processed: false needs a Status to answer with")
    rename = body.raw("Rename") or {}
    if not isinstance(rename, dict) or not all(isinstance(v, str) and v for v in rename.values()):
        raise ProblemError(400, "Rename must map field paths to new names")
    drop = body.raw("Drop") or []
    if not isinstance(drop, list) or not all(isinstance(p, str) for p in drop):
        raise ProblemError(400, "Drop must be a list of field paths")
    try:
        for path in [*rename, *drop]:
            split_path(path)
    except ValueError as error:
        raise ProblemError(400, str(error)) from None
    kind = body.raw("Body")
    if kind is not None and kind not in BODY_KINDS:
        raise ProblemError(400, f"Body must be one of {', '.join(BODY_KINDS)}")
    truncate_at = None if body.raw("TruncateAt") is None else body.integer("TruncateAt")
    content_type = body.string("ContentType", required=False)
    return ResponseTransform(
        id=0,
        operation=operation,
        trigger=Trigger.from_body(body),
        job_id=job_id,
        status=status,
        processed=processed is not False,
        rename=dict(rename),
        drop=list(drop),
        body=kind,
        truncate_at=truncate_at,
        content_type=content_type,
        headers=parse_headers(body.raw("Headers")),
    )


def parse_headers(value: Any) -> dict[str, str | None]:
    """`{"Retry-After": "-5", "X-Gone": null}`: any printable value; null removes the header."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ProblemError(400, "Headers must be an object of header names to string values (or null)")
    headers: dict[str, str | None] = {}
    for name, text in value.items():
        if not name or not name.isascii() or not all(c.isalnum() or c in "!#$%&'*+-.^_`|~" for c in name):
            raise ProblemError(400, f"bad header name {name!r}")
        if name.lower() in FORBIDDEN_HEADERS:
            raise ProblemError(400, f"{name} is set by the server (use Body: CutOff for a short body)")
        if text is not None and (
            not isinstance(text, str) or any(ord(c) < 0x20 or ord(c) > 0xFF or c == "\x7f" for c in text)
        ):
            raise ProblemError(400, f"the value of {name} must be a printable Latin-1 string (or null)")
        headers[name] = text
    return headers
