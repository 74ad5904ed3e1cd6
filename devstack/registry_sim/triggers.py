"""When an armed control fires: on the Nth matching call, then once, Count times, or on every call after.

Shared by response transforms and step faults. Calls are counted from the moment the control is armed,
per key: one key for a Registry route, one per file for a storage step (so "the 3rd Put Block" is the
3rd Put Block of each file).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .bodies import Body
from .problems import ProblemError

MAX_NTH = 1_000_000


@dataclass
class Trigger:
    nth: int = 1
    """The first matching call that fires (1-based)."""
    count: int | None = 1
    """How many calls fire from the Nth on; None = every one."""
    fired: int = 0
    seen: Counter[str] = field(default_factory=Counter)

    @classmethod
    def from_body(cls, body: Body) -> Trigger:
        """`Nth` (default 1), and `Count` (default 1) or `Every: true`."""
        nth = 1 if body.raw("Nth") is None else body.integer("Nth", minimum=1)
        if nth > MAX_NTH:
            raise ProblemError(400, f"Nth must be at most {MAX_NTH}")
        every = body.raw("Every")
        if every is not None and not isinstance(every, bool):
            raise ProblemError(400, "Every must be true or false")
        if every and body.raw("Count") is not None:
            raise ProblemError(400, "give Count or Every, not both")
        count = None if every else (1 if body.raw("Count") is None else body.integer("Count", minimum=1))
        return cls(nth=nth, count=count)

    @property
    def exhausted(self) -> bool:
        return self.count is not None and self.fired >= self.count

    def observe(self, key: str = "") -> bool:
        """Counts one matching call; True when this call is due to fire (call `fire()` if it does)."""
        self.seen[key] += 1
        return not self.exhausted and self.seen[key] >= self.nth

    def fire(self) -> None:
        self.fired += 1

    def to_json(self) -> dict[str, Any]:
        return {
            "Nth": self.nth,
            "Count": self.count,
            "Every": self.count is None,
            "Fired": self.fired,
            "Seen": sum(self.seen.values()),
            "Exhausted": self.exhausted,
        }
