"""The fake table answers like the real one: the same assertions against tests/fakes/tables.py and Azurite
(through azure-data-tables), so the fake cannot drift from what the engine meets. The Azurite variants are
integration tests (they start the local stack); limits Azure enforces and Azurite does not are asserted
on the fake alone, and say so."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.client import BadStatusLine
from typing import Any

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceResponseError,
)
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import EdmType, EntityProperty, TableServiceClient, TableTransactionError, UpdateMode

from tests.fakes.tables import FakeTableClient

IF_MATCH = MatchConditions.IfNotModified


@pytest.fixture(params=["fake", pytest.param("azurite", marks=pytest.mark.integration)])
def table(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "fake":
        yield FakeTableClient()
        return
    stack = request.getfixturevalue("stack")
    service = TableServiceClient.from_connection_string(stack.storage_connection_string)
    client = service.get_table_client(f"contract{uuid.uuid4().hex[:12]}")
    client.create_table()
    yield client
    client.delete_table()


def refuses_like_azure(table: Any, write: Any, code: str) -> None:
    """A limit Azure enforces and Azurite does not: the fake refuses it (400, `code`); Azurite takes it —
    asserted too, so that this test says when Azurite starts to enforce it."""
    if isinstance(table, FakeTableClient):
        with pytest.raises(HttpResponseError) as raised:
            write()
        assert raised.value.status_code == 400 and getattr(raised.value, "error_code", None) == code
    else:
        write()


def entity(row: str = "r1", partition: str = "p", **properties: Any) -> dict[str, Any]:
    return {"PartitionKey": partition, "RowKey": row, **properties}


def conditional(etag: str) -> dict[str, Any]:
    return {"mode": UpdateMode.REPLACE, "etag": etag, "match_condition": IF_MATCH}


def test_values_read_back_as_the_sdk_reads_them(table):
    moment = datetime(2026, 12, 2, 7, 41, 38, 123456, tzinfo=UTC)
    metadata = table.create_entity(
        entity(Count=7, Bytes=EntityProperty(5 * 2**30, EdmType.INT64), When=moment, Name="é ✓", Flag=True, Ratio=0.5)
    )
    read = table.get_entity("p", "r1")

    assert read["Count"] == 7 and type(read["Count"]) is int
    assert read["Bytes"] == EntityProperty(5 * 2**30, EdmType.INT64)
    assert read["When"] == moment and read["When"].tzinfo is not None
    assert (read["Name"], read["Flag"], read["Ratio"]) == ("é ✓", True, 0.5)
    assert read.metadata["etag"] == metadata["etag"] and read.metadata["timestamp"] is not None
    assert "Timestamp" not in read


def test_a_plain_int_of_2_31_or_more_is_refused_before_sending(table):
    with pytest.raises(TypeError, match="too large"):
        table.create_entity(entity(Bytes=2**31))


def test_create_of_an_existing_row_is_409(table):
    table.create_entity(entity())
    with pytest.raises(ResourceExistsError) as raised:
        table.create_entity(entity(Other=1))
    assert raised.value.status_code == 409


def test_a_stale_etag_is_412_and_a_missing_row_404(table):
    first = table.create_entity(entity(State="a"))
    table.update_entity(entity(State="b"), mode=UpdateMode.REPLACE, etag=first["etag"], match_condition=IF_MATCH)

    with pytest.raises(ResourceModifiedError) as stale:
        table.update_entity(entity(State="c"), mode=UpdateMode.REPLACE, etag=first["etag"], match_condition=IF_MATCH)
    with pytest.raises(ResourceNotFoundError) as missing:
        table.update_entity(entity("nope"), mode=UpdateMode.REPLACE, etag=first["etag"], match_condition=IF_MATCH)
    with pytest.raises(ResourceNotFoundError):
        table.get_entity("p", "nope")

    assert stale.value.status_code == 412 and stale.value.error_code == "UpdateConditionNotSatisfied"
    assert missing.value.status_code == 404
    assert table.get_entity("p", "r1")["State"] == "b"


def test_merge_keeps_other_properties_and_replace_drops_them(table):
    table.create_entity(entity(A="a", B="b"))
    table.update_entity(entity(B="b2"), mode=UpdateMode.MERGE)
    assert {k: v for k, v in table.get_entity("p", "r1").items() if k in "AB"} == {"A": "a", "B": "b2"}
    table.upsert_entity(entity(C="c"), mode=UpdateMode.REPLACE)
    assert {k for k in table.get_entity("p", "r1") if k not in ("PartitionKey", "RowKey")} == {"C"}
    table.upsert_entity(entity("r2", D=1))  # MERGE by default: creates a missing row
    assert table.get_entity("p", "r2")["D"] == 1


def test_delete_with_a_stale_etag_is_412_and_of_a_missing_row_is_silent(table):
    first = table.create_entity(entity())
    table.update_entity(entity(X=1))
    with pytest.raises(ResourceModifiedError):
        table.delete_entity("p", "r1", etag=first["etag"], match_condition=IF_MATCH)
    table.delete_entity("p", "r1")
    table.delete_entity("p", "r1")
    table.delete_entity("p", "gone", etag=first["etag"], match_condition=IF_MATCH)
    with pytest.raises(ResourceNotFoundError):
        table.get_entity("p", "r1")


def test_the_engines_queries(table):
    now = datetime.now(UTC)
    for row, state, finished in (("b", "Queued", None), ("a", "Processing", None), ("c", "Completed", now)):
        table.create_entity(entity(row, "job", State=state, **({"FinishedUtc": finished} if finished else {})))
    for row in ("item-g-1", "item-g-2", "item-h-1", "plan-g"):
        table.create_entity(entity(row, "job-1", Kind=row.split("-")[0]))
    table.create_entity(entity("x", "other", State="Queued"))

    def keys(query: str, **options: Any) -> list[str]:
        return [e["RowKey"] for e in table.query_entities(query, **options)]

    assert keys("PartitionKey eq @pk", parameters={"pk": "job"}) == ["a", "b", "c"]
    assert keys("PartitionKey eq 'job' and (State eq 'Queued' or State eq 'Processing')") == ["a", "b"]
    later = {"pk": "job", "cutoff": now + timedelta(seconds=1)}
    assert keys("PartitionKey eq @pk and FinishedUtc lt @cutoff", parameters=later) == ["c"]
    earlier = {"pk": "job", "cutoff": now - timedelta(seconds=1)}
    assert keys("PartitionKey eq @pk and FinishedUtc lt @cutoff", parameters=earlier) == []
    items = {"pk": "job-1", "low": "item-g-", "high": "item-g."}
    assert keys("PartitionKey eq @pk and RowKey ge @low and RowKey lt @high", parameters=items) == [
        "item-g-1",
        "item-g-2",
    ]
    selected = list(table.query_entities("PartitionKey eq @pk", parameters={"pk": "job-1"}, select=["RowKey"]))
    assert [dict(e) for e in selected] == [{"RowKey": k} for k in ("item-g-1", "item-g-2", "item-h-1", "plan-g")]
    assert all(e.metadata["etag"] for e in selected)


def test_a_transaction_is_atomic_and_names_its_failing_operation(table):
    first = table.create_entity(entity("r1", State="a"))
    table.update_entity(entity("r1", State="b"))
    operations = [
        ("create", entity("r2")),
        ("update", entity("r1", State="c"), conditional(first["etag"])),
    ]
    with pytest.raises(TableTransactionError) as conflict:
        table.submit_transaction(operations)

    assert conflict.value.status_code == 412 and conflict.value.index == 1
    assert conflict.value.error_code == "UpdateConditionNotSatisfied"
    with pytest.raises(ResourceNotFoundError):
        table.get_entity("p", "r2")  # the create was not applied either
    with pytest.raises(TableTransactionError) as exists:
        table.submit_transaction([("upsert", entity("r3")), ("create", entity("r1"))])
    assert exists.value.status_code == 409 and exists.value.index == 1
    with pytest.raises(TableTransactionError) as missing:
        table.submit_transaction([("delete", entity("gone"))])
    assert missing.value.status_code == 404


def test_a_transaction_answers_each_operations_etag(table):
    current = table.create_entity(entity("r1"))
    results = table.submit_transaction(
        [
            ("update", entity("r1", A=1), conditional(current["etag"])),
            ("upsert", entity("r2", B=2), {"mode": UpdateMode.REPLACE}),
            ("create", entity("r3")),
        ]
    )
    assert [r["etag"] for r in results] == [table.get_entity("p", row).metadata["etag"] for row in ("r1", "r2", "r3")]
    assert table.submit_transaction([("delete", entity("r3"))]) in ([{}], [{"etag": None}])


def test_a_transaction_across_partitions_is_refused_by_the_sdk(table):
    with pytest.raises(ValueError, match="Partition Keys"):
        table.submit_transaction([("upsert", entity("a", "p1")), ("upsert", entity("b", "p2"))])


def test_a_transaction_of_more_than_100_operations_is_refused(table):
    """Azure answers 400 for the change set (TableTransactionError); Azurite refuses it too, in a multipart
    answer the SDK cannot parse (http.client.BadStatusLine), so only the fake's status is checked."""
    with pytest.raises((TableTransactionError, BadStatusLine)) as raised:
        table.submit_transaction([("upsert", entity(f"r{n:03d}")) for n in range(101)])
    if isinstance(table, FakeTableClient):
        assert isinstance(raised.value, TableTransactionError) and raised.value.status_code == 400
    assert list(table.query_entities("PartitionKey eq 'p'")) == []
    assert len(table.submit_transaction([("upsert", entity(f"r{n:03d}")) for n in range(100)])) == 100


def test_a_string_over_32k_utf16_units_is_refused(table):
    table.create_entity(entity("ok", Text="x" * 32 * 1024))
    for text in ("x" * (32 * 1024 + 1), "\N{GRINNING FACE}" * (16 * 1024 + 1)):  # an emoji is 2 UTF-16 units
        with pytest.raises(HttpResponseError) as raised:
            table.create_entity(entity("big", Text=text))
        assert raised.value.status_code == 400


def test_an_entity_over_1_mib_is_refused(table):
    """Over 1 MiB whether counted in UTF-8 (Azurite) or UTF-16 (Azure)."""
    with pytest.raises(HttpResponseError) as raised:
        table.upsert_entity(entity(**{f"Part{n:02d}": "x" * 30_000 for n in range(40)}))
    assert raised.value.status_code == 400


def test_an_entity_over_1_mib_in_utf16_is_refused(table):
    """Azure counts strings in UTF-16 (2 bytes a character); Azurite counts the UTF-8 JSON."""
    big = entity(**{f"Part{n:02d}": "x" * 30_000 for n in range(20)})
    refuses_like_azure(table, lambda: table.upsert_entity(big), "EntityTooLarge")
    table.upsert_entity(entity("job", **{f"Part{n:02d}": "x" * 30_000 for n in range(16)}))  # the largest job row


def test_more_than_252_properties_are_refused(table):
    table.upsert_entity(entity(**{f"P{n}": n for n in range(252)}))
    many = entity(**{f"P{n}": n for n in range(253)})
    refuses_like_azure(table, lambda: table.upsert_entity(many), "TooManyProperties")


def test_a_transaction_over_a_limit_fails_whole(table):
    with pytest.raises(TableTransactionError) as raised:
        table.submit_transaction([("upsert", entity("a")), ("upsert", entity("b", Text="x" * 40_000))])
    assert raised.value.status_code == 400 and raised.value.index == 1
    assert list(table.query_entities("PartitionKey eq 'p'")) == []


# ---- a lost answer: the fake's hook against the real SDK's retry policy over a transport that loses it -----


class LosingTransport(RequestsTransport):
    """Sends the next write for real (Azurite applies it), then loses its answer once: `timeout` raises as
    a dropped connection would, `gateway` turns the answer into a 504."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = ""

    def send(self, request: Any, **kwargs: Any) -> Any:
        response = super().send(request, **kwargs)
        if self.armed and request.method in ("PUT", "POST", "PATCH", "DELETE", "MERGE"):
            cause, self.armed = self.armed, ""
            if cause == "timeout":
                raise ServiceResponseError("connection reset after the request was sent")
            response.status_code = 504
        return response


@pytest.fixture(params=["fake", pytest.param("azurite", marks=pytest.mark.integration)])
def losing(request: pytest.FixtureRequest) -> Iterator[tuple[Any, Callable[[tuple[str, str], str], None]]]:
    """A table, and how to lose the answer to the next write of a row (the fake's hook, or the transport)."""
    if request.param == "fake":
        fake = FakeTableClient()

        def hook(row: tuple[str, str], cause: str) -> None:
            fake.lose_answer(row, cause=cause)

        yield fake, hook
        assert fake.unfired() == []
        return
    stack = request.getfixturevalue("stack")
    transport = LosingTransport()
    service = TableServiceClient.from_connection_string(stack.storage_connection_string, transport=transport)
    client = service.get_table_client(f"losing{uuid.uuid4().hex[:12]}")
    client.create_table()

    def arm(row: tuple[str, str], cause: str) -> None:
        transport.armed = cause

    yield client, arm
    assert transport.armed == ""
    client.delete_table()


def _replace(table: Any, etag: str, **properties: Any) -> Callable[[], Any]:
    return lambda: table.update_entity(
        entity(**properties), mode=UpdateMode.REPLACE, etag=etag, match_condition=IF_MATCH
    )


def _merge(table: Any, etag: str, **properties: Any) -> Callable[[], Any]:
    return lambda: table.update_entity(entity(**properties), mode=UpdateMode.MERGE, etag=etag, match_condition=IF_MATCH)


def _transaction(table: Any, etag: str, **properties: Any) -> Callable[[], Any]:
    return lambda: table.submit_transaction([("update", entity(**properties), conditional(etag))])


@pytest.mark.parametrize(
    ("write", "cause", "raised"),
    [
        (_replace, "timeout", ResourceModifiedError),  # a PUT: the SDK sends it again, which meets our own ETag
        (_replace, "gateway", ResourceModifiedError),
        (_merge, "timeout", ServiceResponseError),  # a PATCH is not sent again after a dropped connection
        (_merge, "gateway", ResourceModifiedError),  # …but is after a 504
        (_transaction, "timeout", ServiceResponseError),  # a POST, likewise
        (_transaction, "gateway", TableTransactionError),
    ],
)
def test_a_conditional_write_whose_answer_was_lost(losing, write, cause, raised):
    table, lose = losing
    first = table.create_entity(entity(State="a"))
    lose(("p", "r1"), cause)
    with pytest.raises(raised) as error:
        write(table, first["etag"], State="b")()
    if raised is not ServiceResponseError:
        assert error.value.status_code == 412
    assert table.get_entity("p", "r1")["State"] == "b"  # applied all the same


@pytest.mark.parametrize(("cause", "raised"), [("timeout", ServiceResponseError), ("gateway", ResourceExistsError)])
def test_a_create_whose_answer_was_lost(losing, cause, raised):
    table, lose = losing
    lose(("p", "r1"), cause)
    with pytest.raises(raised):
        table.create_entity(entity(State="a"))
    assert table.get_entity("p", "r1")["State"] == "a"


@pytest.mark.parametrize("cause", ["timeout", "gateway"])
def test_an_upsert_or_delete_whose_answer_was_lost_succeeds(losing, cause):
    table, lose = losing
    lose(("p", "r1"), cause)
    table.upsert_entity(entity(State="a"), mode=UpdateMode.REPLACE)
    current = table.get_entity("p", "r1")
    lose(("p", "r1"), cause)
    table.delete_entity("p", "r1", etag=current.metadata["etag"], match_condition=IF_MATCH)
    with pytest.raises(ResourceNotFoundError):
        table.get_entity("p", "r1")
