"""Reading agent request bodies: JSON objects whose names match case-insensitively."""

from __future__ import annotations

import re
from typing import Any

from flask import Request

from .clock import parse_utc
from .problems import ProblemError

SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")


class Body:
    """A JSON object body; `LockToken` and `lockToken` are the same name, unknown names are ignored."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = {name.lower(): value for name, value in values.items()}

    @classmethod
    def of(cls, request: Request) -> Body:
        if not request.is_json:
            raise ProblemError(415, "Content-Type must be application/json")
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise ProblemError(400, "the body must be a JSON object")
        return cls(data)

    def raw(self, name: str) -> Any:
        return self._values.get(name.lower())

    def string(self, name: str, *, required: bool = True) -> str | None:
        value = self.raw(name)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value.strip():
            raise ProblemError(400, f"{name} is required and must be a non-empty string")
        return value

    def required_string(self, name: str) -> str:
        value = self.string(name)
        assert value is not None
        return value

    def integer(self, name: str, *, minimum: int = 0) -> int:
        value = self.raw(name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ProblemError(400, f"{name} is required and must be an integer")
        if value < minimum:
            raise ProblemError(400, f"{name} must be >= {minimum}")
        return value

    def utc_time(self, name: str) -> str:
        value = self.required_string(name)
        try:
            parse_utc(value)
        except ValueError:
            raise ProblemError(400, f"{name} must be an ISO-8601 UTC time such as 2024-05-01T12:00:00Z") from None
        return value

    def sha256(self, name: str = "Sha256") -> str:
        value = self.required_string(name)
        if not SHA256_HEX.match(value):
            raise ProblemError(400, f"{name} must be 64 hexadecimal characters")
        return value
