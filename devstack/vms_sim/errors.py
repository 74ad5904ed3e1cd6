"""The error the vendor modules raise; each profile renders it in its vendor's style."""

from __future__ import annotations

from devstack.registry_sim.problems import ProblemError


class VmsError(ProblemError):
    """A refused request: HTTP status, message, and a vendor reason (EEN `details[].reason`).

    Status 200 is a Rhombus "HTTP 200 with error: true" failure.
    """

    def __init__(
        self, status: int, message: str, *, reason: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status, message, headers=headers)
        self.reason = reason


class DropConnection(Exception):
    """Close the client's connection without any answer (the request's work is already done)."""
