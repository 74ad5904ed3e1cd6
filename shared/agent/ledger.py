"""A job's plan and its work items in Azure Table Storage: what is to be done, and what is done.

The ledger lives in the lock-record table, one partition per job (PartitionKey = job id), so a job's
items and its plan row can change together in one entity-group transaction:

    RowKey  plan-<generation>               the plan: counters, plan-time gaps, the chosen outcome
            item-<generation>-<item id>     one work item: state, attempts, owner, VMS ticket, files

The generation is derived from the lock token: the ledger belongs to the lock. When a job is locked
again later (after a release or a lost lock), its new plan has a new generation and starts fresh; no
file of an old generation is ever counted under the new one.

Item states move forward only: Pending → Running → Delivered | Missing | Failed (Running → Pending
when a run stops early and leaves the item to a later run). Every write is an ETag compare-and-swap;
finishing an item and counting it on the plan is one transaction, so "the last item" is decided by
storage, exactly once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, TableEntity, TableTransactionError, UpdateMode

PENDING, RUNNING, DELIVERED, MISSING, FAILED = "Pending", "Running", "Delivered", "Missing", "Failed"
FINAL_ITEM_STATES = frozenset({DELIVERED, MISSING, FAILED})
PLANNED, RUNNING_PLAN, COMPLETING, DONE = "Planned", "Running", "Completing", "Done"
MEDIA, THUMBNAILS, DISCOVERY = "media", "thumbnails", "discovery"
# file states inside an item: a blob is committed only after Committing is recorded (with its FileId),
# so a run that dies anywhere leaves either nothing to finish or a FileId to complete again
FILE_COMMITTING, FILE_COMMITTED, FILE_DELIVERED, FILE_MISSING = "Committing", "Committed", "Delivered", "Missing"
TRANSACTION_LIMIT = 100
MAX_TEXT = 30_000  # a Table string property holds 32 K characters


class StaleEntry(Exception):
    """The entity changed since it was read (another run got there first)."""


def generation_of(lock_token: str) -> str:
    """A short, stable name for one lock of a job (the token itself is never put in keys or messages)."""
    return hashlib.sha256(lock_token.encode("utf-8")).hexdigest()[:16]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class FileEntry:
    """One file an item delivers, and how far it got."""

    name: str
    kind: str
    """The Complete* call it needs: media, thumbnail or discovery."""
    facts: dict[str, Any]
    """What Complete* reports besides size and hash (camera, times, capture time, device count)."""
    state: str = ""
    file_id: str = ""
    size: int = 0
    sha256: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "Name": self.name,
            "Kind": self.kind,
            "Facts": self.facts,
            "State": self.state,
            "FileId": self.file_id,
            "Size": self.size,
            "Sha256": self.sha256,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FileEntry:
        return cls(
            name=data["Name"],
            kind=data["Kind"],
            facts=dict(data.get("Facts") or {}),
            state=data.get("State", ""),
            file_id=data.get("FileId", ""),
            size=int(data.get("Size") or 0),
            sha256=data.get("Sha256", ""),
        )


@dataclass(frozen=True)
class WorkItem:
    job_id: str
    generation: str
    item_id: str
    kind: str
    camera_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    camera_ids: tuple[str, ...] = ()
    state: str = PENDING
    attempts: int = 0
    """Runs started (claims), crashed ones included."""
    failures: int = 0
    """Runs that ended in an error the agent caught (transient; retried later)."""
    owner: str = ""
    heartbeat: datetime | None = None
    last_error: str = ""
    failure: str = ""
    """For Failed items: 'transient' (gave up retrying) or 'permanent'."""
    ticket: dict[str, Any] | None = None
    ticket_started: datetime | None = None
    files: tuple[FileEntry, ...] = ()
    missing: tuple[str, ...] = ()
    size_hint: int = 0
    bytes_in_flight: int = 0
    updated: datetime = field(default_factory=utc_now)
    etag: str | None = field(default=None, compare=False)

    @property
    def final(self) -> bool:
        return self.state in FINAL_ITEM_STATES

    @property
    def bytes_delivered(self) -> int:
        return sum(f.size for f in self.files if f.state == FILE_DELIVERED)

    @property
    def files_delivered(self) -> int:
        return sum(1 for f in self.files if f.state == FILE_DELIVERED)

    def file(self, name: str) -> FileEntry | None:
        return next((f for f in self.files if f.name == name), None)

    def with_file(self, entry: FileEntry) -> WorkItem:
        if self.file(entry.name) is None:
            return replace(self, files=(*self.files, entry))
        return replace(self, files=tuple(entry if f.name == entry.name else f for f in self.files))

    def label(self) -> str:
        if self.kind == MEDIA and self.start and self.end:
            return f"{self.camera_id} {self.start:%Y-%m-%dT%H:%M:%S}Z–{self.end:%H:%M:%S}Z"
        if self.kind == THUMBNAILS:
            return f"{len(self.camera_ids)} camera(s)"
        return self.kind


@dataclass(frozen=True)
class Plan:
    job_id: str
    generation: str
    job_type: str
    state: str = PLANNED
    items_total: int = 0
    items_remaining: int = 0
    items_delivered: int = 0
    items_missing: int = 0
    items_failed: int = 0
    files_delivered: int = 0
    bytes_delivered: int = 0
    bytes_expected: int = 0
    missing: tuple[str, ...] = ()
    """Gaps found while planning (no recording), reported with the job's outcome."""
    progress_reported_at: datetime | None = None
    outcome: str = ""
    outcome_message: str = ""
    created: datetime = field(default_factory=utc_now)
    updated: datetime = field(default_factory=utc_now)
    etag: str | None = field(default=None, compare=False)


class Ledger:
    """Plans and items of every job, in the table that also holds the lock records."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    # ---- plans --------------------------------------------------------------------------------------

    def get_plan(self, job_id: str, generation: str) -> Plan | None:
        try:
            return _plan_from(self._table.get_entity(job_id, _plan_key(generation)))
        except ResourceNotFoundError:
            return None

    def create_plan(self, plan: Plan, items: list[WorkItem]) -> tuple[Plan, bool]:
        """Writes every item, then the plan (its existence says the items are complete).

        Nothing can have run before the plan row exists (items are enqueued only afterwards), so items
        left by an interrupted earlier attempt are simply overwritten. Returns the stored plan and whether
        this call created it (False: another run finished planning first, and that plan stands)."""
        for start in range(0, len(items), TRANSACTION_LIMIT):
            batch = items[start : start + TRANSACTION_LIMIT]
            operations = [("upsert", _item_entity(item), {"mode": UpdateMode.REPLACE}) for item in batch]
            self._table.submit_transaction(operations)
        try:
            metadata = self._table.create_entity(_plan_entity(plan))
        except ResourceExistsError:
            existing = self.get_plan(plan.job_id, plan.generation)
            if existing is None:
                raise StaleEntry(f"job {plan.job_id}: the plan vanished while being created") from None
            return existing, False
        return replace(plan, etag=metadata["etag"]), True

    def save_plan(self, plan: Plan) -> Plan:
        return replace(plan, etag=self._replace(_plan_entity(plan), plan.etag))

    # ---- items --------------------------------------------------------------------------------------

    def get_item(self, job_id: str, generation: str, item_id: str) -> WorkItem | None:
        try:
            return _item_from(self._table.get_entity(job_id, _item_key(generation, item_id)))
        except ResourceNotFoundError:
            return None

    def items(self, job_id: str, generation: str) -> list[WorkItem]:
        low, high = f"item-{generation}-", f"item-{generation}."
        query = "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high"
        entities = self._table.query_entities(query, parameters={"pk": job_id, "low": low, "high": high})
        return [_item_from(entity) for entity in entities]

    def save_item(self, item: WorkItem) -> WorkItem:
        """Compare-and-swap against the ETag the item was read with."""
        return replace(item, etag=self._replace(_item_entity(item), item.etag))

    def finish_item(self, item: WorkItem, plan: Plan) -> tuple[WorkItem, Plan]:
        """The item (already in its final state) and the plan (already counting it), both or neither."""
        operations = [
            ("update", _item_entity(item), _if_match(item.etag)),
            ("update", _plan_entity(plan), _if_match(plan.etag)),
        ]
        try:
            results = self._table.submit_transaction(operations)
        except TableTransactionError as exc:
            if exc.status_code in (404, 412) or getattr(exc, "error_code", None) in (
                "UpdateConditionNotSatisfied",
                "ResourceNotFound",
            ):
                raise StaleEntry(f"job {item.job_id}: item {item.item_id} or its plan changed meanwhile") from None
            raise
        return replace(item, etag=results[0]["etag"]), replace(plan, etag=results[1]["etag"])

    # ---- plumbing -----------------------------------------------------------------------------------

    def _replace(self, entity: dict[str, Any], etag: str | None) -> str:
        try:
            metadata = self._table.update_entity(entity, **_if_match(etag))
        except (ResourceModifiedError, ResourceNotFoundError):
            raise StaleEntry(f"job {entity['PartitionKey']}: {entity['RowKey']} changed meanwhile") from None
        return str(metadata["etag"])


def _if_match(etag: str | None) -> dict[str, Any]:
    return {"mode": UpdateMode.REPLACE, "etag": etag, "match_condition": MatchConditions.IfNotModified}


def _plan_key(generation: str) -> str:
    return f"plan-{generation}"


def _item_key(generation: str, item_id: str) -> str:
    return f"item-{generation}-{item_id}"


def _text(value: str) -> str:
    return value[:MAX_TEXT]


def _json(value: Any) -> str:
    text = json.dumps(value, separators=(",", ":"), default=str)
    if len(text) > MAX_TEXT:
        raise ValueError(f"ledger value too large for Table Storage ({len(text)} characters)")
    return text


def _optional(entity: dict[str, Any], name: str, value: Any) -> None:
    if value is not None:
        entity[name] = value


def _plan_entity(plan: Plan) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": plan.job_id,
        "RowKey": _plan_key(plan.generation),
        "Kind": "plan",
        "Generation": plan.generation,
        "JobType": plan.job_type,
        "State": plan.state,
        "ItemsTotal": plan.items_total,
        "ItemsRemaining": plan.items_remaining,
        "ItemsDelivered": plan.items_delivered,
        "ItemsMissing": plan.items_missing,
        "ItemsFailed": plan.items_failed,
        "FilesDelivered": plan.files_delivered,
        "BytesDelivered": plan.bytes_delivered,
        "BytesExpected": plan.bytes_expected,
        "Missing": _json(list(plan.missing)),
        "Outcome": plan.outcome,
        "OutcomeMessage": _text(plan.outcome_message),
        "CreatedUtc": plan.created,
        "UpdatedUtc": utc_now(),
    }
    _optional(entity, "ProgressReportedUtc", plan.progress_reported_at)
    return entity


def _plan_from(entity: TableEntity) -> Plan:
    return Plan(
        job_id=entity["PartitionKey"],
        generation=entity["Generation"],
        job_type=entity.get("JobType", ""),
        state=entity.get("State", PLANNED),
        items_total=int(entity.get("ItemsTotal", 0)),
        items_remaining=int(entity.get("ItemsRemaining", 0)),
        items_delivered=int(entity.get("ItemsDelivered", 0)),
        items_missing=int(entity.get("ItemsMissing", 0)),
        items_failed=int(entity.get("ItemsFailed", 0)),
        files_delivered=int(entity.get("FilesDelivered", 0)),
        bytes_delivered=int(entity.get("BytesDelivered", 0)),
        bytes_expected=int(entity.get("BytesExpected", 0)),
        missing=tuple(json.loads(entity.get("Missing") or "[]")),
        progress_reported_at=entity.get("ProgressReportedUtc"),
        outcome=entity.get("Outcome", ""),
        outcome_message=entity.get("OutcomeMessage", ""),
        created=entity.get("CreatedUtc") or utc_now(),
        updated=entity.get("UpdatedUtc") or utc_now(),
        etag=entity.metadata["etag"],
    )


def _item_entity(item: WorkItem) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": item.job_id,
        "RowKey": _item_key(item.generation, item.item_id),
        "Kind": "item",
        "Generation": item.generation,
        "ItemId": item.item_id,
        "ItemKind": item.kind,
        "CameraIds": _json(list(item.camera_ids)),
        "State": item.state,
        "Attempts": item.attempts,
        "Failures": item.failures,
        "Owner": item.owner,
        "LastError": _text(item.last_error),
        "Failure": item.failure,
        "Ticket": _json(item.ticket) if item.ticket is not None else "",
        "Files": _json([f.to_json() for f in item.files]),
        "Missing": _json(list(item.missing)),
        "SizeHint": item.size_hint,
        "BytesInFlight": item.bytes_in_flight,
        "BytesDelivered": item.bytes_delivered,
        "FilesDelivered": item.files_delivered,
        "UpdatedUtc": utc_now(),
    }
    _optional(entity, "CameraId", item.camera_id)
    _optional(entity, "StartUtc", item.start)
    _optional(entity, "EndUtc", item.end)
    _optional(entity, "HeartbeatUtc", item.heartbeat)
    _optional(entity, "TicketStartedUtc", item.ticket_started)
    return entity


def _item_from(entity: TableEntity) -> WorkItem:
    ticket = entity.get("Ticket") or ""
    return WorkItem(
        job_id=entity["PartitionKey"],
        generation=entity["Generation"],
        item_id=entity["ItemId"],
        kind=entity["ItemKind"],
        camera_id=entity.get("CameraId"),
        start=entity.get("StartUtc"),
        end=entity.get("EndUtc"),
        camera_ids=tuple(json.loads(entity.get("CameraIds") or "[]")),
        state=entity.get("State", PENDING),
        attempts=int(entity.get("Attempts", 0)),
        failures=int(entity.get("Failures", 0)),
        owner=entity.get("Owner", ""),
        heartbeat=entity.get("HeartbeatUtc"),
        last_error=entity.get("LastError", ""),
        failure=entity.get("Failure", ""),
        ticket=json.loads(ticket) if ticket else None,
        ticket_started=entity.get("TicketStartedUtc"),
        files=tuple(FileEntry.from_json(f) for f in json.loads(entity.get("Files") or "[]")),
        missing=tuple(json.loads(entity.get("Missing") or "[]")),
        size_hint=int(entity.get("SizeHint", 0)),
        bytes_in_flight=int(entity.get("BytesInFlight", 0)),
        updated=entity.get("UpdatedUtc") or utc_now(),
        etag=entity.metadata["etag"],
    )
