"""What went wrong, as one line for the operator and a distinct exit code for scripts."""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    OK = 0
    DECLINED = 1
    """The operator said no, or the Registry says the lock is no longer ours (nothing was released)."""
    USAGE = 2
    """Bad arguments or settings: the message names what to fix (argparse's own errors use 2 as well)."""
    NOT_FOUND = 3
    """No such job, no such table in this storage account, or (release) the job already ended."""
    FORBIDDEN = 4
    """Storage, Key Vault or the Registry refused: a role (or the connection file) is missing."""
    SIGN_IN = 5
    """No Azure sign-in to use (run `az login`)."""
    UNREACHABLE = 6
    """Storage or the Registry could not be reached."""
    CHECK_FAILED = 7
    """`ops check` found at least one problem (each is one line of its output)."""


class OpsError(Exception):
    """Something the operator must fix; the message says what, `code` is the exit code."""

    def __init__(self, message: str, code: Exit = Exit.USAGE) -> None:
        super().__init__(message)
        self.code = code
