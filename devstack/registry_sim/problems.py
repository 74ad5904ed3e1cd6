"""RFC 9457 problem details: the error type the simulator's modules raise and its HTTP form."""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus

from flask import Response

PROBLEM_CONTENT_TYPE = "application/problem+json"

_TYPES = {
    400: "https://tools.ietf.org/html/rfc9110#section-15.5.1",
    401: "https://tools.ietf.org/html/rfc9110#section-15.5.2",
    403: "https://tools.ietf.org/html/rfc9110#section-15.5.4",
    404: "https://tools.ietf.org/html/rfc9110#section-15.5.5",
    405: "https://tools.ietf.org/html/rfc9110#section-15.5.6",
    409: "https://tools.ietf.org/html/rfc9110#section-15.5.10",
    410: "https://tools.ietf.org/html/rfc9110#section-15.5.11",
    415: "https://tools.ietf.org/html/rfc9110#section-15.5.16",
    422: "https://tools.ietf.org/html/rfc9110#section-15.5.21",
    429: "https://tools.ietf.org/html/rfc6585#section-4",
    500: "https://tools.ietf.org/html/rfc9110#section-15.6.1",
    503: "https://tools.ietf.org/html/rfc9110#section-15.6.4",
}


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class ProblemError(Exception):
    """A request the simulator refuses; becomes an application/problem+json response."""

    def __init__(self, status: int, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


def problem_body(status: int, detail: str) -> dict[str, object]:
    return {
        "type": _TYPES.get(status, "about:blank"),
        "title": _title(status),
        "status": status,
        "detail": detail,
    }


def problem_response(status: int, detail: str, headers: Mapping[str, str | None] | None = None) -> Response:
    """A problem document; a header given as None is left out."""
    response = Response(json.dumps(problem_body(status, detail)), status=status, mimetype=PROBLEM_CONTENT_TYPE)
    for name, value in (headers or {}).items():
        if value is not None:
            response.headers[name] = value
    return response
