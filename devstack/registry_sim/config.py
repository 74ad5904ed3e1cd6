"""Tunable durations of the simulator (changed at run time through /_sim/config)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

# PascalCase name in the control API -> attribute name
CONFIG_FIELDS = {
    "LockDurationSeconds": "lock_duration_seconds",
    "TokenLifetimeSeconds": "token_lifetime_seconds",
    "SasTtlSeconds": "sas_ttl_seconds",
}


@dataclass
class SimConfig:
    lock_duration_seconds: int = 300
    token_lifetime_seconds: int = 3600
    sas_ttl_seconds: int = 3600
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def to_json(self) -> dict[str, int]:
        with self._lock:
            return {name: getattr(self, attr) for name, attr in CONFIG_FIELDS.items()}

    def update(self, changes: dict[str, object]) -> None:
        """Applies PascalCase changes; ValueError names the first bad one (nothing is applied then)."""
        validated: dict[str, int] = {}
        for name, value in changes.items():
            if name not in CONFIG_FIELDS:
                raise ValueError(f"unknown setting {name!r}; known: {', '.join(CONFIG_FIELDS)}")
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer (seconds)")
            validated[CONFIG_FIELDS[name]] = value
        with self._lock:
            for attr, value in validated.items():
                setattr(self, attr, value)
