"""One run's hold on one work item: ownership, the job's lock, and a heartbeat, in one object.

Every write to the item goes through `ItemGuard.save()`, serialised with the heartbeat thread, as an
ETag compare-and-swap. A write that loses the race means another run took the item over (ours was
thought dead): the run stops with `TakenOver`, having committed nothing. The heartbeat thread also reads
the job's lock record; once the lock is lost (renew_locks marked it, a newer lock replaced it, or any
run was answered 409), `check()` raises `LockGone` at the next block boundary. The lock record is read
once when the run claims its item and then by the heartbeat, not before every call: the Registry is the
authority on the lock and refuses InitializeUpload, Complete* and complete under a lost one, and
`confirm_lock_with_registry()` — right before every blob commit, since storage knows nothing of locks —
renews the lock with the Registry: nothing is committed after a loss, and nothing completed either.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from typing import Any

from shared.agent.errors import LockGone, TakenOver
from shared.agent.locks.records import LockRecord, LockRecords
from shared.agent.states import ItemState, RecordState
from shared.agent.work.ledger import Ledger, LedgerRowChanged, WorkItem, utc_now
from shared.registry.client import RegistryClient
from shared.registry.errors import NotOurs
from shared.telemetry import carry_context

log = logging.getLogger(__name__)


class ItemGuard:
    def __init__(
        self,
        record: LockRecord,
        item: WorkItem,
        owner: str,
        *,
        ledger: Ledger,
        records: LockRecords,
        registry: RegistryClient,
        heartbeat_every: float,
    ) -> None:
        """`ledger` for the item's writes, `records` to read the lock record, `registry` to renew the lock
        before a commit; a heartbeat every `heartbeat_every` seconds while entered (`with`)."""
        self._ledger = ledger
        self._records = records
        self._registry = registry
        self._heartbeat_every = heartbeat_every
        self.record = record
        self.owner = owner
        self._item = item
        self._mutex = threading.RLock()
        self._lost = ""
        self._taken_over = False
        self._bytes_in_flight = 0
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    @property
    def item(self) -> WorkItem:
        with self._mutex:
            return self._item

    @property
    def job_id(self) -> str:
        return self.record.job_id

    @property
    def lock_token(self) -> str:
        return self.record.lock_token

    # ---- writes ------------------------------------------------------------------------------------

    def save(self, **changes: Any) -> WorkItem:
        """Compare-and-swap the item with `changes`; TakenOver when another run owns it now.

        A failed compare-and-swap is not taken as a takeover on its face: the item is read back, and if
        this run still owns it (the sweep touched it, say) the write is made again on its newest ETag. A
        write that was applied but whose answer was lost is recognised by the ledger itself (WriteId)."""
        with self._mutex:
            self._raise_if_taken_over()
            wanted = replace(self._item, updated=utc_now(), **changes)
            for _ in range(3):
                try:
                    self._item = self._ledger.save_item(wanted)
                    return self._item
                except LedgerRowChanged:
                    stored = self._ledger.get_item(wanted.job_id, wanted.generation, wanted.item_id)
                    if stored is None or stored.owner != self.owner or stored.state != ItemState.RUNNING:
                        break
                    wanted = replace(wanted, etag=stored.etag)
            self._taken_over = True
            raise TakenOver(f"job {self.job_id}: item {self._item.item_id} was taken over by another run")

    def note(self, **changes: Any) -> WorkItem:
        """Change the item in memory only: the next write (`save`, a heartbeat, or the finish) carries it.

        For what recovery can redo if the run dies before that write: a file's `Delivered` after its
        Complete* (a later run calls Complete* again for the recorded FileId, which the Registry accepts
        once more). It saves one write per file: the next file's `Committing` or the finish carries it."""
        with self._mutex:
            self._raise_if_taken_over()
            self._item = replace(self._item, **changes)
            return self._item

    # ---- checks ------------------------------------------------------------------------------------

    def check(self, *, force: bool = False) -> None:
        """Raise if the lock is lost or the item taken over; `force` reads the lock record now."""
        if force:
            self._read_lock()
        if self._lost:
            raise LockGone(f"job {self.job_id}: {self._lost}")
        self._raise_if_taken_over()

    def confirm_lock_with_registry(self) -> None:
        """Right before a blob is committed: storage knows nothing of locks, so ask the Registry itself
        (a renewal, which is also what keeps the lock). Raises LockGone when the lock is gone."""
        self.check()
        try:
            self._registry.renew(self.job_id, self.lock_token)
        except NotOurs as exc:
            self.mark_lost(f"the Registry answered {exc.status} to a renewal before the commit")
            raise LockGone(f"job {self.job_id}: {self._lost}") from None

    def mark_lost(self, why: str) -> None:
        self._lost = self._lost or why

    def on_bytes(self, uploaded: int) -> None:
        """The upload's progress callback (called at every block boundary)."""
        self._bytes_in_flight = uploaded
        self.check()

    def _raise_if_taken_over(self) -> None:
        if self._taken_over:
            raise TakenOver(f"job {self.job_id}: item {self._item.item_id} was taken over by another run")

    def _read_lock(self) -> None:
        current = self._records.get(self.job_id)
        if current is None:
            self.mark_lost("the lock record is gone")
        elif current.generation != self.record.generation:
            self.mark_lost("a newer lock replaced ours")
        elif current.state == RecordState.LOST:
            self.mark_lost("the lock was lost (renewal answered 409)")
        elif current.terminal:
            self.mark_lost(f"the job already ended as {current.state}")

    # ---- heartbeat ---------------------------------------------------------------------------------

    def __enter__(self) -> ItemGuard:
        # carry_context: the heartbeat's log lines and spans name the job, like the run's (telemetry)
        beat = carry_context(self._beat_loop)
        self._beat = threading.Thread(target=beat, name=f"heartbeat-{self._item.item_id}", daemon=True)
        self._beat.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_heartbeat()

    def stop_heartbeat(self) -> None:
        """Before the run's last writes (finishing the item elsewhere changes its ETag)."""
        with self._mutex:
            self._stop.set()
        if self._beat is not None and self._beat is not threading.current_thread():
            self._beat.join(timeout=30)

    def _beat_loop(self) -> None:
        while not self._stop.wait(self._heartbeat_every):
            try:
                self._read_lock()
                with self._mutex:
                    if self._stop.is_set() or self._taken_over:
                        return
                    self.save(heartbeat=utc_now(), bytes_in_flight=self._bytes_in_flight)
                log.debug("Heartbeat of item %s of job %s", self._item.item_id, self.job_id)
            except TakenOver:
                log.warning("Item %s of job %s was taken over by another run", self._item.item_id, self.job_id)
                return
            except Exception as exc:  # noqa: BLE001 - a missed heartbeat is retried at the next beat
                log.warning("Heartbeat of item %s failed: %s", self._item.item_id, type(exc).__name__)
