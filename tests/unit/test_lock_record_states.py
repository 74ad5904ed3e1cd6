"""The lock record's state machine (`LockRecord.moved_to`): states only move forward, a final state is
final, and a record may be updated in the state it is in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.agent.locks.records import IllegalTransition, LockRecord
from shared.agent.states import FINAL_RECORD_STATES, RecordState

T0 = datetime(2020, 1, 1, tzinfo=UTC)  # long past: every update is later
TERMINAL = sorted(FINAL_RECORD_STATES)


def record(state: RecordState = RecordState.QUEUED, **fields) -> LockRecord:
    return LockRecord(
        "job-1", "mediarequest", "token-1", T0 + timedelta(minutes=5), state=state, created=T0, updated=T0, **fields
    )


def test_the_states_are_the_documented_ones():
    assert {"Queued", "Processing"}.isdisjoint(FINAL_RECORD_STATES)
    assert {
        "Completed", "PartiallyCompleted", "Failed", "Canceled", "Refused", "Released", "Lost", "Abandoned",
    } == FINAL_RECORD_STATES  # fmt: skip


def test_a_queued_record_moves_to_processing_then_to_an_outcome():
    processing = record().moved_to(RecordState.PROCESSING)
    completed = processing.moved_to("Completed", last_error="")

    assert (processing.state, processing.terminal, processing.finished) == (RecordState.PROCESSING, False, None)
    assert completed.state == "Completed" and completed.terminal
    assert completed.finished is not None and completed.finished >= processing.updated


@pytest.mark.parametrize("outcome", TERMINAL)
@pytest.mark.parametrize("start", [RecordState.QUEUED, RecordState.PROCESSING])
def test_an_active_record_may_end_in_any_outcome(start, outcome):
    ended = record(start).moved_to(outcome)

    assert ended.state == outcome and ended.terminal and ended.finished is not None


def test_processing_never_goes_back_to_queued():
    with pytest.raises(IllegalTransition, match="Processing → Queued"):
        record(RecordState.PROCESSING).moved_to(RecordState.QUEUED)


@pytest.mark.parametrize("final", TERMINAL)
def test_a_final_state_never_changes(final):
    ended = record(final, finished=T0)

    for other in [RecordState.QUEUED, RecordState.PROCESSING, *(state for state in TERMINAL if state != final)]:
        with pytest.raises(IllegalTransition, match=f"job job-1: {final} → {other}"):
            ended.moved_to(other)


@pytest.mark.parametrize("state", [RecordState.QUEUED, RecordState.PROCESSING])
def test_an_active_record_is_updated_in_its_own_state(state):
    current = record(state, attempts=1)
    later = T0 + timedelta(minutes=30)

    updated = current.moved_to(state, attempts=2, last_error="VmsTransient: try later", lock_expires=later)

    assert (updated.state, updated.attempts, updated.last_error, updated.lock_expires) == (
        state, 2, "VmsTransient: try later", later,
    )  # fmt: skip
    assert updated.finished is None and updated.updated > current.updated
    assert (updated.job_id, updated.lock_token, updated.created) == (current.job_id, current.lock_token, T0)


@pytest.mark.parametrize("final", TERMINAL)
def test_a_final_record_may_be_updated_in_its_own_state(final):
    updated = record(final, finished=T0).moved_to(final, last_error="noted later")

    assert updated.state == final and updated.terminal and updated.last_error == "noted later"


def test_moving_returns_a_new_record_and_leaves_the_original_as_read():
    original = record(etag="W/etag-1")

    moved = original.moved_to(RecordState.PROCESSING)

    assert original.state == RecordState.QUEUED and original.updated == T0
    assert moved.etag == "W/etag-1"  # the compare-and-swap is made against the ETag it was read with
