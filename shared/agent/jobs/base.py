"""What a job type is to the engine: one small interface, one module per job type (media.py, thumbnails.py,
discovery.py), registered in catalog.py.

A job type says

- `name`, `parameters`: the Registry's job type and its parameters model (wire names: shared/registry/
  contract.py);
- `item_kind`, `file_kind`: what one of its work items is, and which Complete* its files need (as stored);
- `small`: whether the poller reserves capacity for it (short jobs never starve behind long ones);
- `nothing_delivered`: the start of the `Failed` outcome's message when no file could be delivered;
- `plan(...)`: its work items and what is already known to be missing — or `JobCanceled`, decided for
  the whole job before anything is uploaded;
- `run(...)`: what one of its items does: `Done` (with what turned out to be missing) or `Waiting` (the
  VMS is still exporting: the item goes back to the queue, its ticket kept);
- `complete(...)`: the Complete* call for one of its delivered files.

The engine hands each call what it needs and nothing else: the VMS adapter and the segment length to
plan; to run an item, an `ItemRun` (the item's guard for checks and saves, the VMS adapter, the item's
file delivery — each file exactly once — and the waits); the Registry client to complete a file.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import ValidationError

from shared.agent.errors import JobCanceled
from shared.agent.jobs.cameras import KnownCameras
from shared.agent.states import FileKind, ItemKind
from shared.agent.work.guard import ItemGuard
from shared.agent.work.ledger import FileEntry, OfferedJob, WorkItem
from shared.registry.client import RegistryClient
from shared.vms.base import VmsAdapter
from shared.wire import CaseInsensitiveModel, describe_validation_error

if TYPE_CHECKING:  # delivery names JobType in turn
    from shared.agent.work.delivery import FileDelivery


@dataclass
class Draft:
    """What planning found: the items to run, and what is already known to be missing."""

    items: list[WorkItem] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Planning:
    """What a job type may use to plan."""

    vms: VmsAdapter
    max_segment: timedelta
    cameras: KnownCameras = field(default_factory=KnownCameras)
    """The VMS's camera ids as this worker last listed them (cameras.py)."""


@dataclass(frozen=True)
class Done:
    missing: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Waiting:
    delay: float
    progress: float = 0.0


@dataclass(frozen=True)
class ItemRun:
    """What one run of one work item may use."""

    guard: ItemGuard
    """The run's hold on the item: `item`, `check()` at block boundaries, `save(...)` of the item's fields."""
    vms: VmsAdapter
    files: FileDelivery
    """`files.deliver(...)` one file exactly once; `files.resume(entry)` a file an earlier run committed."""
    wait_in_run: float
    """How long one run waits for a VMS export before handing the item back to the queue."""
    export_timeout: float
    sleep: Callable[[float], None]

    @property
    def item(self) -> WorkItem:
        return self.guard.item


class JobType(ABC):
    name: ClassVar[str]
    parameters: ClassVar[type[CaseInsensitiveModel]]
    item_kind: ClassVar[ItemKind]
    file_kind: ClassVar[FileKind]
    small: ClassVar[bool]
    nothing_delivered: ClassVar[str]

    def parse(self, raw: dict[str, Any]) -> Any:
        """The job's parameters as the Registry offered them, validated; JobCanceled when malformed."""
        try:
            return self.parameters.model_validate(raw)
        except ValidationError as exc:
            raise JobCanceled(describe_validation_error(exc, source="malformed job parameters")) from None

    @abstractmethod
    def plan(self, job: OfferedJob, parameters: Any, planning: Planning) -> Draft:
        """The job's work items (ids unique within this plan), or JobCanceled."""

    @abstractmethod
    def run(self, run: ItemRun) -> Done | Waiting:
        """One work item of this type."""

    @abstractmethod
    def complete(self, registry: RegistryClient, job_id: str, lock_token: str, entry: FileEntry) -> None:
        """The Complete* call of one delivered file (its FileId, size, SHA-256 and facts in `entry`)."""
