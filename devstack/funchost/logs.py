"""Reading a host's own log: how many function runs overlapped, and how long the longest took."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_EXECUTING = re.compile(r"Executing 'Functions\.(\w+)' \(Reason=.*?, Id=([0-9a-f-]+)")
_EXECUTED = re.compile(r"Executed 'Functions\.(\w+)' \((\w[\w ]*), Id=([0-9a-f-]+), Duration=(\d+)ms")


@dataclass(frozen=True)
class InvocationStats:
    most_at_once: int
    """The most runs of the function in flight at one moment in one host process."""
    longest_seconds: float
    runs: int


def invocation_stats(logs: Iterable[Path], function: str) -> InvocationStats:
    """Over several host logs (one per process: a killed host's log just stops)."""
    most, longest, runs = 0, 0.0, 0
    for path in logs:
        running: set[str] = set()
        for line in path.read_text(errors="replace").splitlines():
            if (match := _EXECUTING.search(line)) and match.group(1) == function:
                running.add(match.group(2))
                most = max(most, len(running))
            elif (match := _EXECUTED.search(line)) and match.group(1) == function:
                running.discard(match.group(3))
                longest = max(longest, int(match.group(4)) / 1000)
                runs += 1
    return InvocationStats(most, longest, runs)
