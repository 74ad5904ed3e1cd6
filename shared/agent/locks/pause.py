"""The agent's own pause: when the cause of a failure is the agent's (a VMS credential refused, a setting
wrong), locking more jobs would only lock and release them again at every poll. So the agent stops
locking new jobs for `AGENT_PAUSE_SECONDS`, then checks the cause again (the poller probes the VMS) and
either resumes or pauses again, with one log line naming the cause each time.

The pause is one row in the lock table, shared by every instance. It lives in the active index's
partition (`active`/`~pause`; no job id starts with `~`), so the poll's one query of that partition tells
it both how many jobs are in flight and whether the agent is paused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

log = logging.getLogger(__name__)

PARTITION, ROW = "active", "~pause"
"""In the active index's partition (records.ACTIVE_PARTITION): read by the poll's one query."""


def is_pause_row(row: Mapping[str, Any]) -> bool:
    return row.get("RowKey") == ROW


@dataclass(frozen=True)
class PauseState:
    cause: str
    since: datetime
    until: datetime


class AgentPause:
    def __init__(self, table: TableClient, seconds: float, clock: Callable[[], datetime] | None = None) -> None:
        self._table = table
        self.seconds = seconds
        self._clock = clock or (lambda: datetime.now(UTC))

    def current(self) -> PauseState | None:
        try:
            row = self._table.get_entity(PARTITION, ROW)
        except ResourceNotFoundError:
            return None
        return self._state(row)

    def among(self, rows: Iterable[Mapping[str, Any]]) -> PauseState | None:
        """The pause, from rows of the active partition already read (the poll's one query)."""
        row = next((row for row in rows if is_pause_row(row)), None)
        return self._state(row) if row is not None else None

    def _state(self, row: Mapping[str, Any]) -> PauseState:
        return PauseState(str(row.get("Cause", "")), row.get("SinceUtc") or self._clock(), row["UntilUtc"])

    def pause(self, cause: str) -> PauseState:
        """Pause (or extend the pause) for AGENT_PAUSE_SECONDS from now, naming the cause."""
        now = self._clock()
        earlier = self.current()
        state = PauseState(cause[:500], earlier.since if earlier else now, now + timedelta(seconds=self.seconds))
        self._table.upsert_entity(
            {"PartitionKey": PARTITION, "RowKey": ROW, "Cause": state.cause, "SinceUtc": state.since,
             "UntilUtc": state.until},
            mode=UpdateMode.REPLACE,
        )  # fmt: skip
        log.error(
            "Agent paused: no new jobs are locked until %s; cause: %s",
            state.until.isoformat(timespec="seconds"),
            state.cause,
            extra={"agent_event": "Paused"},
        )
        return state

    def resume(self) -> None:
        try:
            self._table.delete_entity(PARTITION, ROW)
        except ResourceNotFoundError:
            return
        log.warning(
            "Agent resumed: the cause of the pause is gone; locking jobs again", extra={"agent_event": "Resumed"}
        )
