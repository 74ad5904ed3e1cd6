"""The fake table's fault hooks do what they say, fire when they should, and record it."""

from __future__ import annotations

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ServiceResponseError
from azure.data.tables import TableTransactionError, UpdateMode

from tests.fakes.tables import FakeTableClient

ROW = ("p", "r1")


def replace_if_unchanged(table: FakeTableClient, etag: str, **properties: object) -> dict:
    entity = {"PartitionKey": "p", "RowKey": "r1", **properties}
    return table.update_entity(
        entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
    )


def test_a_conflict_hits_only_the_nth_write_to_its_row():
    table = FakeTableClient()
    etag = table.create_entity({"PartitionKey": "p", "RowKey": "r1", "N": 0})["etag"]
    table.create_entity({"PartitionKey": "p", "RowKey": "other"})
    hook = table.conflict(ROW, changes={"By": "someone"}, nth=2)  # counted from when the hook is set

    etag = replace_if_unchanged(table, etag, N=1)["etag"]  # write 1
    table.upsert_entity({"PartitionKey": "p", "RowKey": "other", "X": 1})  # another row: not counted
    assert hook.fired == 0
    with pytest.raises(ResourceModifiedError):
        replace_if_unchanged(table, etag, N=2)  # write 2: another writer got there first
    assert hook.fired == 1 and table.get_entity("p", "r1")["By"] == "someone"
    replace_if_unchanged(table, table.get_entity("p", "r1").metadata["etag"], N=3)  # write 3: no more conflict
    assert hook.fired == 1 and table.unfired() == []


def test_a_conflict_fails_a_transaction_holding_the_row_and_nothing_of_it_is_applied():
    table = FakeTableClient()
    etag = table.create_entity({"PartitionKey": "p", "RowKey": "r1"})["etag"]
    hook = table.conflict(ROW, operations={"transaction"})
    options = {"mode": UpdateMode.REPLACE, "etag": etag, "match_condition": MatchConditions.IfNotModified}

    operations = [
        ("create", {"PartitionKey": "p", "RowKey": "r0"}),
        ("update", {"PartitionKey": "p", "RowKey": "r1"}, options),
    ]
    with pytest.raises(TableTransactionError) as raised:
        table.submit_transaction(operations)

    assert hook.fired == 1 and (raised.value.status_code, raised.value.index) == (412, 1)
    assert [e["RowKey"] for e in table.query_entities("PartitionKey eq 'p'")] == ["r1"]
    assert [w.outcome for w in table.writes_to(ROW)] == ["ok", "412"]


def test_a_callback_runs_before_the_write_and_may_write_the_same_row():
    table = FakeTableClient()
    etag = table.create_entity({"PartitionKey": "p", "RowKey": "r1"})["etag"]
    seen = []

    def another_writer() -> None:
        seen.append(table.upsert_entity({"PartitionKey": "p", "RowKey": "r1", "B": 1}))

    hook = table.before_write(ROW, another_writer, operations={"update"})

    with pytest.raises(ResourceModifiedError):
        replace_if_unchanged(table, etag, A=1)

    assert hook.fired == 1 and len(seen) == 1 and "A" not in table.get_entity("p", "r1")
    assert [w.operation for w in table.writes_to(ROW)] == ["create", "upsert", "update"]


@pytest.mark.parametrize(
    ("mode", "cause", "seen"),
    [
        (UpdateMode.REPLACE, "timeout", ResourceModifiedError),  # PUT: the SDK sends it again → 412
        (UpdateMode.MERGE, "timeout", ServiceResponseError),  # PATCH: not again after a dropped connection
        (UpdateMode.MERGE, "gateway", ResourceModifiedError),  # …but again after a 5xx
    ],
)
def test_a_lost_answer_applies_the_write_then_does_what_the_sdk_does(mode, cause, seen):
    table = FakeTableClient()
    etag = table.create_entity({"PartitionKey": "p", "RowKey": "r1"})["etag"]
    hook = table.lose_answer(ROW, operations={"update"}, cause=cause)

    with pytest.raises(seen):
        entity = {"PartitionKey": "p", "RowKey": "r1", "A": 1}
        table.update_entity(entity, mode=mode, etag=etag, match_condition=MatchConditions.IfNotModified)

    assert hook.fired == 1 and table.get_entity("p", "r1")["A"] == 1
    retried = seen is not ServiceResponseError
    assert [w.outcome for w in table.writes_to(ROW)][1:] == ["applied, answer lost"] + (
        ["retry: 412"] if retried else []
    )


def test_a_lost_answer_can_be_forced_to_reach_the_caller():
    table = FakeTableClient()
    etag = table.create_entity({"PartitionKey": "p", "RowKey": "r1"})["etag"]
    table.lose_answer(ROW, retried=False)
    with pytest.raises(ServiceResponseError):
        replace_if_unchanged(table, etag, A=1)
    with pytest.raises(ResourceModifiedError):  # the caller's own second identical call meets the moved ETag
        replace_if_unchanged(table, etag, A=1)
