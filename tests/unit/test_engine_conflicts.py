"""Every conflict and retry path of the engine, forced deterministically on the in-memory table.

The engine's real objects (LockRecords, Ledger, ItemGuard, finish_item, complete_job, run_item,
process_message, poll, sweep) run on tests/fakes; each test scripts one fault with a hook of the fake
table and asserts that the hook fired, so the path it names is known to have run.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from azure.core.exceptions import ServiceResponseError

from shared.agent.errors import TakenOver
from shared.agent.jobs.base import Planning
from shared.agent.locks.poller import poll
from shared.agent.locks.records import PARTITION, LockRecord
from shared.agent.locks.renewer import renew_all
from shared.agent.locks.sweep import UNPLANNED_AFTER, sweep
from shared.agent.states import FileKind, FileState, ItemState, PlanState, RecordState
from shared.agent.work.completion import finish_item
from shared.agent.work.ending import lose_job, release_job
from shared.agent.work.guard import ItemGuard
from shared.agent.work.ledger import FileEntry, OfferedJob, Plan, WorkItem, new_plan_id
from shared.agent.work.messages import JobMessage, decode_message, encode_job
from shared.agent.work.planner import draft_plan
from shared.agent.work.processor import plan_job, process_message
from tests.fakes.agent import Engine, engine_services
from tests.fakes.queues import FakeMessage

GiB = 2**30


@pytest.fixture
def engine():
    built = engine_services()
    yield built
    assert [hook.description for hook in built.table.unfired()] == [], "a scripted fault never happened"


# ---- helpers ---------------------------------------------------------------------------------------------


def locked(engine: Engine, job_type: str = "discovery", parameters: dict | None = None) -> LockRecord:
    """A job offered by the Registry, locked and recorded by the real poller (its job message queued)."""
    job_id = engine.registry.offer(job_type, parameters)
    assert poll(engine.services, max_in_flight=10).locked == [job_id]
    record = engine.services.records.get(job_id)
    assert record is not None
    return record


def guard_of(engine: Engine, record: LockRecord, item: WorkItem, owner: str) -> ItemGuard:
    """The run's hold on `item`, with the engine's real collaborators."""
    services = engine.services
    return ItemGuard(record, item, owner, ledger=services.ledger, records=services.records,
                     registry=services.registry, heartbeat_every=services.heartbeat_every)  # fmt: skip


def process(engine: Engine, message: FakeMessage, message_id: str | None = None) -> str:
    return process_message(message.content, dequeue_count=1, message_id=message_id or message.id,
                           services=engine.services)  # fmt: skip


def plan_only(engine: Engine, message: FakeMessage) -> str:
    """The real planner, without running a one-item job's item in the same run (processor._plan_and_start)."""
    job = decode_message(message.content)
    assert isinstance(job, JobMessage)
    return plan_job(job, message_id=message.id, services=engine.services, run_inline=False)


def planned(engine: Engine, cameras: int = 21) -> tuple[LockRecord, Plan, list[WorkItem]]:
    """A thumbnail job of `cameras` cameras (20 to an item), locked and planned by the real planner."""
    engine.vms.cameras = [f"cam-{n}" for n in range(cameras)]
    record = locked(engine, "thumbnail", {"CameraIds": engine.vms.cameras})
    (message,) = engine.queue.receive()
    assert plan_only(engine, message) == "Planned"
    engine.queue.receive()  # the item messages: each test sends its own
    plan = engine.services.ledger.get_plan(record.job_id, record.generation)
    assert plan is not None and plan.state == PlanState.UNDER_WAY
    current = engine.services.records.get(record.job_id)
    assert current is not None
    return current, plan, engine.services.ledger.items(plan)


def claimed(engine: Engine, item: WorkItem, owner: str, heartbeat: datetime | None = None) -> WorkItem:
    return engine.services.ledger.save_item(
        replace(
            item,
            state=ItemState.RUNNING,
            owner=owner,
            attempts=item.attempts + 1,
            heartbeat=heartbeat or datetime.now(UTC),
        )
    )


def delivered(item: WorkItem, size: int) -> WorkItem:
    """The item in its final state, one file of `size` bytes delivered."""
    entry = FileEntry(
        f"{item.item_id}.jpg", FileKind.THUMBNAIL, {}, FileState.DELIVERED, f"file-{item.item_id}", size, "0" * 64
    )
    return replace(item, state=ItemState.DELIVERED, files=(entry,), owner="")


def item_row(item: WorkItem) -> tuple[str, str]:
    return item.job_id, f"item-{item.generation}-{item.item_id}"


def plan_row(plan: Plan) -> tuple[str, str]:
    return plan.job_id, f"plan-{plan.generation}"


def outcomes(engine: Engine, row: tuple[str, str], operation: str | None = None) -> list[str]:
    return [w.outcome for w in engine.table.writes_to(row) if operation is None or w.operation == operation]


def job_ended_lines(caplog: pytest.LogCaptureFixture, job_id: str) -> list[str]:
    lines = [record.getMessage() for record in caplog.records]
    return [line for line in lines if line.startswith("Job ended") and job_id in line]


# ---- answers lost after the write was applied (WriteId) ----------------------------------------------------


def test_an_item_write_whose_answer_was_lost_is_recognised_as_applied(engine):
    record, _, (item, _) = planned(engine)
    lost = engine.table.lose_answer(item_row(item), operations={"update"})

    saved = claimed(engine, item, "run-1")

    assert lost.fired == 1 and "SDK retried" in lost.events[0]  # a REPLACE is a PUT: the SDK sends it again
    assert outcomes(engine, item_row(item))[-2:] == ["applied, answer lost", "retry: 412"]
    stored = engine.services.ledger.get_item(record.job_id, record.generation, item.item_id)
    assert stored is not None and stored.owner == "run-1" and stored.attempts == 1 and stored.etag == saved.etag


def test_a_lock_record_write_whose_answer_was_lost_is_recognised_as_applied(engine):
    record = locked(engine)
    lost = engine.table.lose_answer((PARTITION, record.job_id), operations={"update"})

    moved = engine.services.records.save(record.moved_to(RecordState.PROCESSING))

    assert lost.fired == 1
    assert outcomes(engine, (PARTITION, record.job_id))[-2:] == ["applied, answer lost", "retry: 412"]
    stored = engine.services.records.get(record.job_id)
    assert stored is not None and stored.state == RecordState.PROCESSING and stored.etag == moved.etag


def test_a_finishing_transaction_whose_answer_was_lost_counts_the_item_once(engine):
    record, plan, (first, second) = planned(engine)
    lost = engine.table.lose_answer(plan_row(plan), operations={"transaction"}, cause="gateway")

    done, counted = finish_item(engine.services, record, delivered(claimed(engine, first, "run-1"), 3 * GiB))

    assert lost.fired == 1 and "SDK retried" in lost.events[0]
    # the first transaction on the plan row created it with its items (planned())
    assert outcomes(engine, plan_row(plan), "transaction")[1:] == ["applied, answer lost", "retry: 412"]
    stored = engine.services.ledger.get_plan(record.job_id, record.generation)
    assert stored is not None and stored.etag == counted.etag
    assert (stored.items_remaining, stored.items_delivered, stored.files_delivered) == (1, 1, 1)
    assert stored.bytes_delivered == 3 * GiB and stored.state == PlanState.UNDER_WAY
    assert done.etag == engine.services.ledger.get_item(first.job_id, first.generation, first.item_id).etag

    _, last = finish_item(engine.services, record, delivered(claimed(engine, second, "run-2"), 2 * GiB))
    assert last.state == PlanState.COMPLETING
    final = engine.services.ledger.get_plan(record.job_id, record.generation)
    assert (final.items_remaining, final.items_delivered, final.bytes_delivered) == (0, 2, 5 * GiB)


def test_a_finishing_transaction_that_timed_out_is_recognised_as_applied_and_the_job_completes_once(engine):
    """A read timeout on the transaction (a POST): the SDK does not send it again. The item row holds the
    transaction's WriteId, so the run knows it was applied and goes on to complete the job — one count,
    one completion, no message sent again."""
    record = locked(engine)
    (job_message,) = engine.queue.receive()
    assert plan_only(engine, job_message) == "Planned"
    (item_message,) = engine.queue.receive()
    plan = engine.services.ledger.get_plan(record.job_id, record.generation)
    lost = engine.table.lose_answer(plan_row(plan), operations={"transaction"}, cause="timeout")

    assert process(engine, item_message) == "Delivered"

    assert lost.fired == 1 and "SDK gave up" in lost.events[0]
    assert engine.queue.receive() == []
    final = engine.services.ledger.get_plan(record.job_id, record.generation)
    assert (final.state, final.items_remaining, final.items_delivered, final.files_delivered) == ("Done", 0, 1, 1)
    assert engine.registry.operations("complete") == 1 and engine.registry.states[record.job_id] == "Completed"
    assert engine.services.records.get(record.job_id).state == "Completed"


def connection_reset() -> None:
    raise ServiceResponseError("('Connection aborted.', ConnectionResetError(104, 'Connection reset by peer'))")


def test_a_finishing_transaction_that_never_reached_the_table_is_sent_again_in_the_same_run(engine):
    record = locked(engine)
    (job_message,) = engine.queue.receive()
    assert plan_only(engine, job_message) == "Planned"
    (item_message,) = engine.queue.receive()
    plan = engine.services.ledger.get_plan(record.job_id, record.generation)
    reset = engine.table.before_write(plan_row(plan), connection_reset, operations={"transaction"})

    assert process(engine, item_message) == "Delivered"

    assert reset.fired == 1 and engine.queue.receive() == []
    final = engine.services.ledger.get_plan(record.job_id, record.generation)
    assert (final.state, final.items_delivered, final.files_delivered) == (PlanState.DONE, 1, 1)
    assert engine.registry.operations("complete") == 1


def test_an_item_run_failing_after_its_upload_is_taken_over_at_once_by_its_retry(engine):
    """The finish transaction never reaches the table, twice (connections reset by the server): the run
    fails with the item Running under its claim and a fresh heartbeat. Its retry names the failed run as
    Previous, so it takes the item over at once instead of waiting STALE_AFTER for the heartbeat to age
    (seen in `make demo`: a job 60 s late), and completes the file without uploading it again."""
    record = locked(engine)
    (job_message,) = engine.queue.receive()
    assert plan_only(engine, job_message) == "Planned"
    (item_message,) = engine.queue.receive()
    plan = engine.services.ledger.get_plan(record.job_id, record.generation)
    resets = [
        engine.table.before_write(plan_row(plan), connection_reset, operations={"transaction"}, nth=n) for n in (1, 2)
    ]

    assert process(engine, item_message) == "RetryLater"
    (again,) = engine.queue.receive()
    assert decode_message(again.content).previous == item_message.id

    assert process(engine, again) == "Delivered"

    assert [reset.fired for reset in resets] == [1, 1]
    assert engine.services.records.get(record.job_id).state == RecordState.COMPLETED
    assert engine.registry.operations("initialize_upload") == 1 and engine.registry.operations("complete") == 1


# ---- two items finishing at once ---------------------------------------------------------------------------


def test_two_items_finishing_at_once_the_loser_counts_again_on_the_plans_newest_state(engine):
    record, plan, (first, second) = planned(engine)
    a = delivered(claimed(engine, first, "run-a"), 3 * GiB)
    b = replace(claimed(engine, second, "run-b"), state=ItemState.MISSING, missing=("cam-20 (no image)",), owner="")
    finished_b: list[Plan] = []
    race = engine.table.before_write(plan_row(plan), lambda: finished_b.append(finish_item(engine.services, record,
                                     b)[1]), operations={"transaction"})  # fmt: skip

    _, plan_a = finish_item(engine.services, record, a)

    assert race.fired == 1
    # after the plan's creation (with its items): b, a (conflict), a again
    assert outcomes(engine, plan_row(plan), "transaction")[1:] == ["ok", "412", "ok"]
    assert [p.state for p in (finished_b[0], plan_a)] == [
        PlanState.UNDER_WAY,
        PlanState.COMPLETING,
    ]  # exactly one completes it
    final = engine.services.ledger.get_plan(record.job_id, record.generation)
    assert (final.state, final.items_remaining, final.items_delivered, final.items_missing) == (
        PlanState.COMPLETING,
        0,
        1,
        1,
    )
    assert (final.files_delivered, final.bytes_delivered) == (1, 3 * GiB)


# ---- the guard's writes --------------------------------------------------------------------------------------


def test_a_guard_write_that_meets_the_sweeps_touch_is_made_again(engine):
    record, _, (item,) = planned(engine, cameras=1)
    held = claimed(engine, item, "run-1")
    guard = guard_of(engine, record, held, "run-1")  # no heartbeat thread: entered only by `with`
    later = datetime.now(UTC) + timedelta(hours=1)
    swept: list = []
    touch = engine.table.before_write(item_row(item), lambda: swept.append(sweep(engine.services, [record], later)),
                                      operations={"update"})  # fmt: skip

    saved = guard.save(last_error="still working")

    assert touch.fired == 1 and swept[0].items == [f"{record.job_id}/{item.item_id}"]
    assert outcomes(engine, item_row(item))[-3:] == ["ok", "412", "ok"]  # the sweep's write, ours, ours again
    stored = engine.services.ledger.get_item(record.job_id, record.generation, item.item_id)
    assert stored.owner == "run-1" and stored.last_error == "still working" and stored.etag == saved.etag
    guard.check()  # not taken over


def test_a_guard_write_that_meets_another_owners_claim_stops_and_writes_nothing_more(engine):
    record, _, (item,) = planned(engine, cameras=1)
    held = claimed(engine, item, "run-1")
    guard = guard_of(engine, record, held, "run-1")
    claim = engine.table.conflict(item_row(item), changes={"Owner": "run-2", "Attempts": 2}, operations={"update"})

    with pytest.raises(TakenOver):
        guard.save(last_error="still working")
    writes = len(engine.table.writes_to(item_row(item)))
    with pytest.raises(TakenOver):
        guard.save(last_error="one more")
    with pytest.raises(TakenOver):
        guard.check()

    assert claim.fired == 1
    assert outcomes(engine, item_row(item))[-1] == "412" and len(engine.table.writes_to(item_row(item))) == writes
    stored = engine.services.ledger.get_item(record.job_id, record.generation, item.item_id)
    assert stored.owner == "run-2" and stored.last_error == ""


# ---- fencing -------------------------------------------------------------------------------------------------


def test_an_old_locks_endings_change_nothing_of_the_new_lock_and_log_no_job_end(engine, caplog):
    old = locked(engine)
    engine.queue.receive()
    engine.registry.expire_lock(old.job_id)
    assert poll(engine.services, max_in_flight=10).locked == [old.job_id]
    new = engine.services.records.get(old.job_id)
    assert new.generation != old.generation and new.locks == 2
    record_writes = len(engine.table.writes_to((PARTITION, old.job_id)))

    with caplog.at_level(logging.INFO):
        assert engine.services.records.transition(old.job_id, RecordState.LOST, generation=old.generation) is None
        assert lose_job(engine.services, old, "renewal answered 409") is False
        release_job(engine.services, old, "an old run gives up")

    assert len(engine.table.writes_to((PARTITION, old.job_id))) == record_writes  # not even attempted
    current = engine.services.records.get(old.job_id)
    assert (current.state, current.generation, current.etag) == (RecordState.QUEUED, new.generation, new.etag)
    assert engine.table.get_entity("active", old.job_id)["Generation"] == new.generation
    assert engine.registry.tokens[old.job_id] == new.lock_token  # the old token's release was refused
    assert job_ended_lines(caplog, old.job_id) == []


# ---- planning -------------------------------------------------------------------------------------------------


def test_marking_the_plan_running_while_an_item_finishes_is_no_planning_failure(engine):
    engine.vms.cameras = [f"cam-{n}" for n in range(21)]
    record = locked(engine, "thumbnail", {"CameraIds": engine.vms.cameras})
    (message,) = engine.queue.receive()
    key = (record.job_id, f"plan-{record.generation}")

    def an_item_finishes() -> None:
        plan = engine.services.ledger.get_plan(record.job_id, record.generation)
        assert plan is not None and plan.state == PlanState.PLANNED
        first = engine.services.ledger.items(plan)[0]
        finish_item(
            engine.services, record, replace(claimed(engine, first, "quick"), state=ItemState.MISSING, owner="")
        )

    race = engine.table.before_write(key, an_item_finishes, operations={"update"})

    assert process(engine, message) == "Planned"

    assert race.fired == 1 and outcomes(engine, key, "update") == ["412", "ok"]
    plan = engine.services.ledger.get_plan(record.job_id, record.generation)
    assert (plan.state, plan.items_remaining, plan.items_missing) == (PlanState.UNDER_WAY, 1, 1)
    current = engine.services.records.get(record.job_id)
    assert (current.state, current.attempts, current.last_error) == (RecordState.PROCESSING, 0, "")
    enqueued = [decode_message(m.content).item_id for m in engine.queue.receive()]
    assert enqueued == [item.item_id for item in engine.services.ledger.items(plan)]


def test_marking_the_plan_running_never_undoes_the_last_item_moving_it_to_completing(engine):
    record = locked(engine)
    (message,) = engine.queue.receive()
    key = (record.job_id, f"plan-{record.generation}")
    finished: list[Plan] = []

    def the_only_item_finishes() -> None:
        plan = engine.services.ledger.get_plan(record.job_id, record.generation)
        (only,) = engine.services.ledger.items(plan)
        done = replace(claimed(engine, only, "quick"), state=ItemState.MISSING, owner="")
        finished.append(finish_item(engine.services, record, done)[1])

    race = engine.table.before_write(key, the_only_item_finishes, operations={"update"})

    assert plan_only(engine, message) == "Planned"

    assert race.fired == 1 and finished[0].state == PlanState.COMPLETING
    assert outcomes(engine, key, "update") == ["412"]  # the retry saw Completing and wrote nothing
    plan = engine.services.ledger.get_plan(record.job_id, record.generation)
    assert (plan.state, plan.items_remaining) == (PlanState.COMPLETING, 0)


def test_two_planners_of_one_lock_leave_one_plan_and_the_loser_adopts_it(engine):
    engine.vms.cameras = [f"cam-{n}" for n in range(41)]
    record = locked(engine, "thumbnail", {"CameraIds": engine.vms.cameras})
    (message,) = engine.queue.receive()
    key = (record.job_id, f"plan-{record.generation}")
    winner: list[str] = []

    def the_other_planner_wins_and_an_item_starts() -> None:
        winner.append(process(engine, message, "planner-b"))
        plan = engine.services.ledger.get_plan(record.job_id, record.generation)
        claimed(engine, engine.services.ledger.items(plan)[0], "someone")

    # the plan row is created in the transaction that writes the items
    race = engine.table.before_write(key, the_other_planner_wins_and_an_item_starts, operations={"transaction"})

    assert process(engine, message, "planner-a") == "Duplicate"  # lost the plan row, adopted the winner's plan

    assert race.fired == 1 and winner == ["Planned"]
    assert outcomes(engine, key, "transaction") == ["ok", "409"]  # b's create, then a's
    plan = engine.services.ledger.get_plan(record.job_id, record.generation)
    items = engine.services.ledger.items(plan)
    assert plan.items_total == len(items) == 3 and {i.plan_id for i in items} == {plan.plan_id}
    assert items[0].state == ItemState.RUNNING and items[0].owner == "someone"  # never reset
    rows = list(engine.table.query_entities("PartitionKey eq @pk", parameters={"pk": record.job_id}))
    item_rows = [row for row in rows if row["RowKey"].startswith("item-")]
    assert len(item_rows) == 3  # a's transaction (its items with its plan row) was refused whole
    assert sorted(decode_message(m.content).item_id for m in engine.queue.receive()) == [i.item_id for i in items]


def test_a_planner_adopting_a_plan_whose_planner_died_enqueues_it_without_resetting_an_item(engine):
    engine.vms.cameras = [f"cam-{n}" for n in range(41)]
    record = locked(engine, "thumbnail", {"CameraIds": engine.vms.cameras})
    (message,) = engine.queue.receive()
    key = (record.job_id, f"plan-{record.generation}")
    offered = OfferedJob(record.job_id, record.generation, "thumbnail", json.loads(record.parameters))

    def the_other_planner_stores_its_plan_and_dies() -> None:
        plan_id = new_plan_id()
        draft = draft_plan(offered, plan_id, Planning(engine.vms, engine.services.max_segment))
        plan = Plan(record.job_id, record.generation, "thumbnail", plan_id=plan_id, items_total=3, items_remaining=3)
        stored, _ = engine.services.ledger.create_plan(plan, draft.items, [])
        first, second, _ = engine.services.ledger.items(stored)
        claimed(engine, first, "someone")
        finish_item(
            engine.services, record, replace(claimed(engine, second, "quick"), state=ItemState.MISSING, owner="")
        )

    race = engine.table.before_write(key, the_other_planner_stores_its_plan_and_dies, operations={"transaction"})

    assert process(engine, message, "planner-a") == "Planned"

    assert race.fired == 1
    plan = engine.services.ledger.get_plan(record.job_id, record.generation)
    items = engine.services.ledger.items(plan)
    assert plan.state == PlanState.UNDER_WAY and {i.plan_id for i in items} == {plan.plan_id}
    assert items[0].state == ItemState.RUNNING and items[0].owner == "someone" and items[1].state == ItemState.MISSING
    assert (plan.items_remaining, plan.items_missing) == (2, 1)
    unfinished = [items[0].item_id, items[2].item_id]
    assert sorted(decode_message(m.content).item_id for m in engine.queue.receive()) == unfinished


def test_a_plan_create_whose_answer_was_lost_and_retried_is_no_planning_failure(engine):
    """A one-item job: its plan and its item (claimed by the planning run) are created in one transaction,
    whose answer is lost; the SDK's retry is refused (409) by our own rows, which are read back, and the
    planning run goes on to run the item and complete the job, once."""
    record = locked(engine)
    (message,) = engine.queue.receive()
    key = (record.job_id, f"plan-{record.generation}")
    lost = engine.table.lose_answer(key, operations={"transaction"}, cause="gateway")

    assert process(engine, message) == "Delivered"

    assert lost.fired == 1 and outcomes(engine, key, "transaction")[:2] == ["applied, answer lost", "retry: 409"]
    plan = engine.services.ledger.get_plan(record.job_id, record.generation)
    (item,) = engine.services.ledger.items(plan)
    assert (plan.state, item.state, item.attempts, item.owner) == (PlanState.DONE, ItemState.DELIVERED, 1, "")
    current = engine.services.records.get(record.job_id)
    assert (current.state, current.attempts) == (RecordState.COMPLETED, 0)
    assert engine.registry.operations("complete") == 1 and engine.queue.receive() == []


@pytest.mark.parametrize("fault", ["timed out, applied", "never reached the table"])
def test_a_plan_create_with_no_answer_is_recognised_or_sent_again_and_the_job_completes_in_the_same_run(engine, fault):
    """The plan's transaction is a POST: the SDK does not send it again when its answer never comes. One that
    was applied is recognised by its plan row (this attempt's plan id); one that never reached the table is
    sent again."""
    record = locked(engine)
    (message,) = engine.queue.receive()
    key = (record.job_id, f"plan-{record.generation}")
    if fault == "timed out, applied":
        hook = engine.table.lose_answer(key, operations={"transaction"}, cause="timeout")
    else:
        hook = engine.table.before_write(key, connection_reset, operations={"transaction"})

    assert process(engine, message) == "Delivered"

    assert hook.fired == 1
    current = engine.services.records.get(record.job_id)
    assert (current.state, current.attempts) == (RecordState.COMPLETED, 0)
    assert engine.registry.operations("complete") == 1 and engine.queue.receive() == []


# ---- the lock record's creation ---------------------------------------------------------------------------


def test_a_lock_record_create_whose_answer_was_lost_and_retried_leaves_one_record(engine):
    job_id = engine.registry.offer("discovery")
    lost = engine.table.lose_answer((PARTITION, job_id), operations={"create"}, cause="gateway")

    result = poll(engine.services, max_in_flight=10)

    assert lost.fired == 1 and result.locked == [job_id] and result.problems == {}
    assert outcomes(engine, (PARTITION, job_id)) == ["applied, answer lost", "retry: 409"]
    record = engine.services.records.get(job_id)
    assert (record.state, record.locks, record.lock_token) == (RecordState.QUEUED, 1, engine.registry.tokens[job_id])
    assert [decode_message(m.content).job_id for m in engine.queue.receive()] == [job_id]
    assert engine.registry.operations("lock") == 1 and engine.registry.operations("release") == 0


def test_a_lock_record_create_that_timed_out_releases_the_job_and_the_next_lock_reuses_the_record(engine):
    """A create is a POST: on a read timeout the SDK does not send it again; the poller gives the job up
    (released, the reason in the record it did write), and the next lock carries that record forward."""
    job_id = engine.registry.offer("discovery")
    lost = engine.table.lose_answer((PARTITION, job_id), operations={"create"}, cause="timeout")

    first = poll(engine.services, max_in_flight=10)

    assert lost.fired == 1 and "lock record write failed" in first.problems[job_id] and first.released == [job_id]
    record = engine.services.records.get(job_id)
    assert record.state == "Released" and "ServiceResponseError" in record.last_error
    assert engine.queue.receive() == []

    assert poll(engine.services, max_in_flight=10).locked == [job_id]
    again = engine.services.records.get(job_id)
    assert (again.state, again.locks) == (RecordState.QUEUED, 2)
    assert len(list(engine.table.query_entities("PartitionKey eq 'job'"))) == 1


# ---- the sweep -------------------------------------------------------------------------------------------------


def test_the_sweep_puts_an_abandoned_item_back_once_per_sweep_after(engine):
    record, _, (abandoned, other) = planned(engine)
    finish_item(engine.services, record, replace(claimed(engine, other, "quick"), state=ItemState.MISSING, owner=""))
    claimed(engine, abandoned, "dead")
    after = timedelta(seconds=engine.services.sweep_after)
    start = datetime.now(UTC) + timedelta(hours=1)

    second = timedelta(seconds=1)
    sent = []
    for moment in (start, start + after / 2, start + after - second, start + after + second):
        result = sweep(engine.services, [record], moment)
        sent.append([decode_message(m.content) for m in engine.queue.receive()])
        assert len(result.items) == len(sent[-1])

    assert [len(messages) for messages in sent] == [1, 0, 0, 1]
    for (message,) in (sent[0], sent[3]):
        assert (message.item_id, message.previous) == (abandoned.item_id, "dead")


# ---- found by these tests ----------------------------------------------------------------------------------


def test_a_finish_that_meets_the_sweeps_touch_is_made_again(engine):
    record = locked(engine)
    (job_message,) = engine.queue.receive()
    assert plan_only(engine, job_message) == "Planned"
    (item_message,) = engine.queue.receive()
    plan = engine.services.ledger.get_plan(record.job_id, record.generation)
    swept: list = []
    later = datetime.now(UTC) + timedelta(hours=1)
    touch = engine.table.before_write(plan_row(plan), lambda: swept.append(sweep(engine.services, [record], later)),
                                      operations={"transaction"})  # fmt: skip

    outcome = process(engine, item_message)

    assert touch.fired == 1 and len(swept[0].items) == 1  # the sweep did touch the item, owner unchanged
    assert outcome == ItemState.DELIVERED
    (item,) = engine.services.ledger.items(plan)
    assert item.state == ItemState.DELIVERED
    assert engine.registry.states[record.job_id] == "Completed"


def test_a_renewal_during_a_relock_keeps_the_new_locks_index_row(engine):
    old = locked(engine)
    engine.queue.receive()
    release_job(engine.services, old, "the VMS was down")  # the record ends Released; the job is offered again
    renewals: list = []
    race = engine.table.before_write(
        (PARTITION, old.job_id),
        lambda: renewals.append(renew_all(engine.services, margin=timedelta(0))),
        operations={"create"},
    )

    assert poll(engine.services, max_in_flight=10).locked == [old.job_id]

    assert race.fired == 1
    new = engine.services.records.get(old.job_id)
    assert (new.state, new.locks, new.releases) == (RecordState.QUEUED, 2, 1)
    assert [record.job_id for record in engine.services.records.active()] == [old.job_id]


def test_a_relock_whose_record_replacement_meets_the_old_run_marking_it_lost_keeps_the_new_lock(engine):
    """Our lock expired mid-item and the job is offered again. The poller locks it and replaces the old
    record just as the old lock's run marks that record Lost: the replacement is made again on the newest
    record, instead of giving up and releasing the lock it just took (seen in `make drill`: an extra
    lock and release)."""
    old = locked(engine)
    engine.queue.receive()
    engine.registry.expire_lock(old.job_id)
    race = engine.table.before_write(
        (PARTITION, old.job_id), lambda: lose_job(engine.services, old, "the lock expired"), operations={"update"}
    )

    assert poll(engine.services, max_in_flight=10).locked == [old.job_id]

    assert race.fired == 1 and engine.registry.operations("release") == 0
    new = engine.services.records.get(old.job_id)
    assert (new.state, new.locks, new.generation != old.generation) == (RecordState.QUEUED, 2, True)
    assert new.last_error.startswith("previous lock ended Lost")
    assert [record.job_id for record in engine.services.records.active()] == [old.job_id]
    (message,) = engine.queue.receive()
    assert process(engine, message) == "Delivered"
    assert engine.services.records.get(old.job_id).state == RecordState.COMPLETED


def test_a_completion_whose_record_write_was_never_answered_still_logs_job_ended_once(engine, caplog):
    record = locked(engine)
    (job_message,) = engine.queue.receive()
    assert plan_only(engine, job_message) == "Planned"  # the record's first update: Processing
    (item_message,) = engine.queue.receive()
    lost = engine.table.lose_answer((PARTITION, record.job_id), operations={"update"}, retried=False)

    with caplog.at_level(logging.INFO):
        assert process(engine, item_message) == "RetryLater"  # ServiceResponseError after the record was written
        (again,) = engine.queue.receive()
        process(engine, again)

    assert lost.fired == 1 and engine.services.records.get(record.job_id).state == "Completed"
    assert engine.services.ledger.get_plan(record.job_id, record.generation).state == "Done"
    assert len(job_ended_lines(caplog, record.job_id)) == 1


def test_a_one_item_job_run_by_its_planning_run_whose_completion_went_unanswered_completes_once(engine, caplog):
    """The planning run runs the job's only item; the record's final write is applied but its answer lost.
    The job message comes back (one more try, not a planning failure) and finishes the completion."""
    record = locked(engine)
    (job_message,) = engine.queue.receive()
    # the record's first update is Processing; its second, Completed, is applied and its answer lost
    lost = engine.table.lose_answer((PARTITION, record.job_id), operations={"update"}, retried=False, nth=2)

    with caplog.at_level(logging.INFO):
        assert process(engine, job_message) == "RetryLater"
        (again,) = engine.queue.receive()
        assert decode_message(again.content).tries == 1
        assert process(engine, again) == "Completed"

    assert lost.fired == 1
    current = engine.services.records.get(record.job_id)
    assert (current.state, current.attempts) == (RecordState.COMPLETED, 0)  # no planning attempt was counted
    assert engine.services.ledger.get_plan(record.job_id, record.generation).state == PlanState.DONE
    assert engine.registry.operations("complete") == 1 and len(job_ended_lines(caplog, record.job_id)) == 1


# ---- a job of one item, run by its planning run ---------------------------------------------------------


def test_a_one_item_job_is_run_by_its_planning_run_with_one_message_and_one_claim(engine):
    record = locked(engine)
    (job_message,) = engine.queue.receive()

    assert process(engine, job_message) == "Delivered"

    plan = engine.services.ledger.get_plan(record.job_id, record.generation)
    (item,) = engine.services.ledger.items(plan)
    assert (plan.state, plan.items_delivered, plan.files_delivered) == (PlanState.DONE, 1, 1)
    assert (item.state, item.attempts, item.owner, item.files[0].state) == (
        ItemState.DELIVERED, 1, "", FileState.DELIVERED,
    )  # fmt: skip
    assert engine.services.records.get(record.job_id).state == RecordState.COMPLETED
    assert engine.queue.receive() == [] and engine.registry.operations("complete") == 1
    # the plan and its claimed item were written in one transaction; the item was never claimed again
    assert outcomes(engine, item_row(item)) == ["ok", "ok", "ok"]  # created, Committing, finished


class HostKilled(BaseException):
    """The worker dies at this instruction (nothing of the run is caught or cleaned up)."""


def test_a_planning_run_killed_while_running_the_jobs_only_item_is_taken_over_by_the_redelivered_message(engine):
    """Killed after the file's Complete*: the item is left Running, its file Committing. The job message
    comes back (dequeue count 2), is swapped for a copy naming it as Previous; that copy hands the item to
    an item message which takes it over at once, completes the file again (the Registry answers it as
    done) and completes the job, once."""
    record = locked(engine)
    (job_message,) = engine.queue.receive()
    plan_key = (record.job_id, f"plan-{record.generation}")

    def kill() -> None:
        raise HostKilled

    killed = engine.table.before_write(plan_key, kill, operations={"transaction"}, nth=2)  # the finish
    with pytest.raises(HostKilled):
        process(engine, job_message)
    plan = engine.services.ledger.get_plan(record.job_id, record.generation)
    (item,) = engine.services.ledger.items(plan)
    assert (item.state, item.owner, item.files[0].state) == (ItemState.RUNNING, job_message.id, FileState.COMMITTING)

    redelivered = process_message(job_message.content, dequeue_count=2, message_id=job_message.id,
                                  services=engine.services)  # fmt: skip
    (copy,) = engine.queue.receive()
    assert redelivered == "Refreshed" and decode_message(copy.content).previous == job_message.id
    assert process(engine, copy) == "Resumed"
    (item_message,) = engine.queue.receive()
    assert process(engine, item_message) == "Delivered"

    assert killed.fired == 1
    assert engine.services.records.get(record.job_id).state == RecordState.COMPLETED
    assert engine.registry.operations("complete") == 1
    assert engine.registry.operations("initialize_upload") == 1  # the file was not uploaded again


def redeliver(engine: Engine, record: LockRecord, tries: int) -> str:
    """The job's message, on its `tries`-th failed run, delivered again (its run died)."""
    body = encode_job(record.job_id, record.generation, tries=tries)
    return process_message(body, dequeue_count=2, message_id="dead-run", services=engine.services)


def test_a_job_message_whose_runs_die_after_the_plan_is_stored_is_not_poisoned_as_a_planning_failure(engine):
    """The drill's 480-item job: its runs died during planning, then one stored the plan and died while
    enqueueing the items. That death is not the planning's: the copy keeps its count, and adopts the plan."""
    record, _plan, _items = planned(engine, cameras=41)
    last_try = engine.services.max_tries - 1

    assert redeliver(engine, record, last_try) == "Refreshed"

    (copy,) = engine.queue.receive()
    again = decode_message(copy.content)
    assert isinstance(again, JobMessage) and (again.tries, again.previous) == (last_try, "dead-run")
    assert process(engine, copy) == "Duplicate"  # the plan is under way: nothing left to plan or hand over
    assert engine.services.records.get(record.job_id).state == RecordState.PROCESSING
    assert engine.registry.operations("release") == 0


def test_a_job_message_whose_runs_keep_dying_before_any_plan_is_poisoned_and_the_job_released(engine):
    record = locked(engine)
    engine.queue.receive()  # the poller's message: its runs die

    assert redeliver(engine, record, engine.services.max_tries - 2) == "Refreshed"
    (copy,) = engine.queue.receive()
    assert decode_message(copy.content).tries == engine.services.max_tries - 1
    assert redeliver(engine, record, engine.services.max_tries - 1) == "Poisoned"

    assert engine.services.records.get(record.job_id).state == RecordState.RELEASED
    assert engine.registry.operations("release") == 1


def test_a_lock_whose_job_message_was_never_sent_is_planned_after_the_sweep_sends_one(engine):
    """The poller's host killed between the lock record and the enqueue: the lock is Queued with no plan
    and no message. The sweep sends a job message once UNPLANNED_AFTER has passed (once per that time),
    and the job completes instead of being renewed, idle, until its maximum age."""
    record = locked(engine)
    engine.queue.receive()  # the job message, never sent
    soon = record.created + UNPLANNED_AFTER / 2
    later = record.created + UNPLANNED_AFTER + timedelta(seconds=1)

    assert sweep(engine.services, [record], soon).plans == [] and engine.queue.receive() == []
    assert sweep(engine.services, [record], later).plans == [f"{record.job_id} (Queued, never planned)"]
    (message,) = engine.queue.receive()
    current = engine.services.records.get(record.job_id)
    assert current.swept == later
    assert sweep(engine.services, [current], later + UNPLANNED_AFTER / 2).plans == []  # not again so soon

    assert process(engine, message) == "Delivered"
    assert engine.services.records.get(record.job_id).state == RecordState.COMPLETED


# ---- a renewal racing the completion ----------------------------------------------------------------------


def test_a_renewal_refused_because_the_complete_just_ended_the_lock_does_not_mark_the_job_lost(engine, caplog):
    """The Registry accepts `complete` and ends the lock; before the run writes the record Completed,
    renew_locks renews and is answered 409. The job was completed, not lost: the record ends Completed
    and the plan Done (seen in `make drill` as one false Lost and one plan stuck Completing)."""
    record = locked(engine)
    (job_message,) = engine.queue.receive()
    renewals = []
    race = engine.table.before_write(
        (PARTITION, record.job_id),
        lambda: renewals.append(renew_all(engine.services, margin=timedelta(hours=1))),
        operations={"update"},
        nth=2,  # the record's first update is Processing; its second, after `complete`, Completed
    )

    with caplog.at_level(logging.INFO):
        assert process(engine, job_message) == "Delivered"

    assert race.fired == 1 and engine.registry.states[record.job_id] == "Completed"
    (renewal,) = renewals
    assert (renewal.completing, renewal.lost) == ([record.job_id], [])
    assert engine.services.records.get(record.job_id).state == RecordState.COMPLETED
    assert engine.services.ledger.get_plan(record.job_id, record.generation).state == PlanState.DONE
    (ended,) = job_ended_lines(caplog, record.job_id)
    assert "state=Completed" in ended


def test_a_lock_that_really_expired_while_the_job_was_completing_ends_lost_with_its_plan_closed(engine, caplog):
    """The run dies just before `complete`, and the lock expires. The renewal is refused while the plan is
    Completing, so it leaves the verdict to the completion; the sweep sends the job message, whose
    `complete` is refused: the record ends Lost and the plan Done, and nothing is renewed or swept again."""
    record = locked(engine)
    (job_message,) = engine.queue.receive()
    real_complete = engine.registry.complete

    def killed_before_complete(*args, **kwargs):
        engine.registry.complete = real_complete
        raise HostKilled

    engine.registry.complete = killed_before_complete
    with pytest.raises(HostKilled):
        process(engine, job_message)
    engine.registry.expire_lock(record.job_id)

    first = renew_all(engine.services, margin=timedelta(hours=1))
    assert (first.completing, first.lost) == ([record.job_id], [])
    assert engine.services.records.get(record.job_id).state == RecordState.PROCESSING
    later = datetime.now(UTC) + timedelta(seconds=engine.services.sweep_after + 1)
    assert sweep(engine.services, engine.services.records.active(), later).plans == [f"{record.job_id} (Completing)"]
    (message,) = engine.queue.receive()
    with caplog.at_level(logging.INFO):
        assert process(engine, message) == "Lost"

    assert engine.services.records.get(record.job_id).state == RecordState.LOST
    plan = engine.services.ledger.get_plan(record.job_id, record.generation)
    assert (plan.state, plan.outcome) == (PlanState.DONE, RecordState.LOST)
    assert len(job_ended_lines(caplog, record.job_id)) == 1
    assert engine.registry.operations("complete") == 1  # the one refused; the killed run never called it
    assert list(engine.services.records.active()) == [] and engine.queue.receive() == []
