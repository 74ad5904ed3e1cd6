"""Live per-job progress bars (files and bytes) for the demo and the drill, read from the agent's ledger.

Drawn with `rich`; when the output is not a terminal (CI, a pipe) rich draws nothing live and the
final state is printed once, so logs stay readable.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from shared.agent.locks.records import LockRecords
from shared.agent.work.ledger import Ledger
from shared.agent.work.progress import JobProgress, job_progress

FINAL = frozenset({"Completed", "PartiallyCompleted", "Failed", "Canceled"})


@dataclass
class _Row:
    job_id: str
    label: str
    files: TaskID
    data: TaskID


class ProgressView:
    """One pair of bars per job: work items done (files) and bytes delivered + in flight."""

    def __init__(self, records: LockRecords, ledger: Ledger, console: Console | None = None) -> None:
        self._records, self._ledger = records, ledger
        self.console = console or Console()
        self._files = Progress(
            TextColumn("{task.description}", justify="left"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("{task.fields[what]}"),
            console=self.console,
            auto_refresh=False,
        )
        self._bytes = Progress(
            TextColumn("{task.description}", justify="left"),
            BarColumn(bar_width=24),
            DownloadColumn(binary_units=True),
            console=self.console,
            auto_refresh=False,
        )
        self._rows: list[_Row] = []
        self._live: Live | None = None

    def __enter__(self) -> ProgressView:
        self._live = Live(Group(self._files, self._bytes), console=self.console, refresh_per_second=4)
        self._live.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.__exit__(kind, error, trace)

    def add(self, job_id: str, job_type: str, label: str) -> None:
        title = f"{job_id[:8]} {job_type:<12} {label[:28]:<28}"
        files = self._files.add_task(title, total=None, what="Available")
        data = self._bytes.add_task(f"{job_id[:8]} bytes", total=None)
        self._rows.append(_Row(job_id, label, files, data))

    def update(self, registry_states: dict[str, str]) -> list[JobProgress]:
        """Read every job's ledger once and redraw; returns what was read."""
        seen = []
        for row in self._rows:
            record = self._records.get(row.job_id)
            state = registry_states.get(row.job_id, "?")
            if record is None:
                self._files.update(row.files, what=state)
                continue
            progress = job_progress(record, self._ledger)
            seen.append(progress)
            final = state in FINAL
            total = progress.items_total or (1 if final else None)
            done = progress.items_done if progress.items_total else (1 if final else 0)
            self._files.update(row.files, total=total, completed=done, what=f"{state} / {progress.state}")
            expected = max(progress.bytes_expected, progress.bytes_done) or None
            self._bytes.update(row.data, total=expected, completed=progress.bytes_done)
        if self._live is not None:
            self._live.refresh()
        return seen
