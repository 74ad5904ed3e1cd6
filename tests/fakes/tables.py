"""An in-memory Azure Table that answers like azure-data-tables' `TableClient`, and can fail on purpose.

Scope: exactly the calls the engine makes — `create_table`, `get_entity`, `create_entity`, `update_entity`
(MERGE/REPLACE, `etag` + `MatchConditions.IfNotModified`), `upsert_entity`, `delete_entity`,
`query_entities` (the OData filters the engine writes, `parameters`, `select`) and `submit_transaction`.

What it mirrors (checked against azure-data-tables 12.7 and, in tests/unit/test_table_contract.py, Azurite):

- Entities go through the SDK's own client-side conversion, so a plain `int` ≥ 2^31 is refused with the
  SDK's TypeError, and values read back as the SDK reads them (`EntityProperty(n, EdmType.INT64)` for
  Int64, an aware UTC datetime for Edm.DateTime), as `TableEntity` with `metadata["etag"]`.
- Errors are the SDK's: `ResourceNotFoundError` (404), `ResourceExistsError` (409 on create),
  `ResourceModifiedError` (412 on a conditional update or delete), `HttpResponseError` (400 for a limit),
  each with `status_code` and `error_code`; `delete_entity` of a missing row is silent, as in the SDK.
- A transaction is atomic, in one partition (else the SDK's ValueError), at most 100 operations and one
  per row (else `TableTransactionError` 400); its first failing operation raises `TableTransactionError`
  with that operation's status, error code and `index`, and nothing is applied.
- Azure's limits, which Azurite does not all enforce: a string property of at most 32 K UTF-16 code
  units (64 KiB), an entity of at most 1 MiB (Azure's size formula), at most 252 properties besides
  PartitionKey, RowKey and Timestamp; keys without `/ \\ # ?` or control characters, at most 1 KiB.

Fault hooks, each on the nth write touching one row (counted from when the hook is set; a transaction
touches each of its rows) and each recording when it fired, so a test can assert that its path ran:

- `lose_answer(row)`: the write is applied and its answer lost. What the caller then sees is what the
  SDK does next: with `cause="timeout"` (connection dropped after sending) its retry policy sends the
  identical request again only for PUT and DELETE (a REPLACE update or upsert, a delete) — that retry
  meets the ETag the first one moved (412), or the row it created (409) — and otherwise raises
  `ServiceResponseError`; with `cause="gateway"` (a 5xx after the write was applied) it retries every
  method. `retried=` forces either way.
- `conflict(row, changes=…)`: another writer changes the row just before the nth write to it (a merge
  of `changes`, or only a new ETag), so a conditional write — or a transaction holding it — meets 412.
- `before_write(row, callback)`: runs `callback()` just before the nth write to the row (to interleave
  another writer, e.g. a whole second planner, deterministically).

`writes` logs every write (operation, rows, outcome) so a test can assert what was, or was not, written.
"""

from __future__ import annotations

import base64
import copy
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote
from uuid import UUID

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceResponseError,
)
from azure.data.tables import EntityProperty, TableEntity, TableTransactionError, UpdateMode
from azure.data.tables._deserialize import _convert_to_entity
from azure.data.tables._serialize import _add_entity_properties, _get_match_condition, _parameter_filter_substitution

Key = tuple[str, str]
Wire = dict[str, Any]
"""An entity as the SDK sends it: values plus `Name@odata.type` annotations."""

WRITE_OPERATIONS = frozenset({"create", "update", "upsert", "delete", "transaction"})
TRANSACTION_LIMIT = 100
MAX_PROPERTIES = 252
MAX_STRING_UNITS = 32 * 1024
MAX_BINARY_BYTES = 64 * 1024
MAX_ENTITY_BYTES = 1024 * 1024
MAX_KEY_CHARS = 1024
_BAD_KEY = re.compile(r"[\x00-\x1f\x7f-\x9f/\\#?]")
_REASONS = {400: "Bad Request", 404: "Not Found", 409: "Conflict", 412: "Precondition Failed"}


# ---- errors, as the SDK raises them -------------------------------------------------------------------


class ServiceRefusal(Exception):
    """What the service answered to one operation (raised as the SDK's exception by `_answer`, or as a
    TableTransactionError naming the operation by `_transaction`)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _sdk_error(refusal: ServiceRefusal) -> HttpResponseError:
    """The exception the SDK raises for a single-entity operation refused with this status and code."""
    kind = {404: ResourceNotFoundError, 409: ResourceExistsError, 412: ResourceModifiedError}.get(
        refusal.status, HttpResponseError
    )
    error = kind(message=f"{refusal.message}\nErrorCode:{refusal.code}")
    _stamp(error, refusal)
    return error


def _transaction_error(index: int, refusal: ServiceRefusal) -> TableTransactionError:
    error = TableTransactionError(message=f"{index}:{refusal.message}\nErrorCode:{refusal.code}")
    _stamp(error, refusal)
    return error


def _stamp(error: HttpResponseError, refusal: ServiceRefusal) -> None:
    error.status_code = refusal.status
    error.reason = _REASONS.get(refusal.status, "")
    error.error_code = refusal.code  # type: ignore[attr-defined]


def _not_found() -> ServiceRefusal:
    return ServiceRefusal(404, "ResourceNotFound", "The specified resource does not exist.")


def _exists() -> ServiceRefusal:
    return ServiceRefusal(409, "EntityAlreadyExists", "The specified entity already exists.")


def _modified() -> ServiceRefusal:
    return ServiceRefusal(412, "UpdateConditionNotSatisfied", "The update condition specified in the request was "
                          "not satisfied.")  # fmt: skip


# ---- fault hooks --------------------------------------------------------------------------------------


@dataclass
class Write:
    """One write request as it reaches the service: its operation, HTTP method and the rows it touches."""

    operation: str
    method: str
    rows: tuple[Key, ...]
    outcome: str = ""


@dataclass
class Hook:
    """A scripted fault on the nth write (of `operations`) touching `row`; fires `times` times."""

    description: str
    row: Key
    operations: frozenset[str]
    nth: int = 1
    times: int = 1
    seen: int = 0
    fired: int = 0
    events: list[str] = field(default_factory=list)

    def due(self, write: Write) -> bool:
        """Counts a matching write; True when this one is to be hit."""
        if write.operation not in self.operations or self.row not in write.rows:
            return False
        self.seen += 1
        return self.seen >= self.nth and self.fired < self.times

    def record(self, event: str) -> None:
        self.fired += 1
        self.events.append(event)


@dataclass
class BeforeWrite(Hook):
    callback: Callable[[], object] = lambda: None


@dataclass
class Conflict(Hook):
    changes: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class LoseAnswer(Hook):
    cause: str = "timeout"
    retried: bool | None = None

    def sdk_retries(self, method: str) -> bool:
        """Whether azure-data-tables' retry policy sends the request again (azure-core's RetryPolicy:
        read errors only for HEAD/GET/PUT/DELETE/OPTIONS/TRACE; a 500/503/504 for every method)."""
        if self.retried is not None:
            return self.retried
        return self.cause == "gateway" or method in ("PUT", "DELETE")


# ---- the table ----------------------------------------------------------------------------------------


@dataclass
class _Row:
    wire: Wire
    etag: str
    timestamp: str


class FakeTableClient:
    """An in-memory table with ETags, entity-group transactions and fault hooks (see the module docstring)."""

    def __init__(self, table_name: str = "faketable") -> None:
        self.table_name = table_name
        self._rows: dict[Key, _Row] = {}
        self._lock = threading.RLock()
        self._clock = datetime.now(UTC)
        self.hooks: list[Hook] = []
        self.writes: list[Write] = []

    # ---- scripting faults ------------------------------------------------------------------------------

    def lose_answer(
        self,
        row: Key,
        *,
        operations: Iterable[str] = WRITE_OPERATIONS,
        nth: int = 1,
        cause: str = "timeout",
        retried: bool | None = None,
    ) -> LoseAnswer:
        if cause not in ("timeout", "gateway"):
            raise ValueError(f"cause must be 'timeout' or 'gateway', not {cause!r}")
        hook = LoseAnswer(f"answer lost ({cause}) to write {nth} of {row}", row, frozenset(operations), nth,
                          cause=cause, retried=retried)  # fmt: skip
        return self._add(hook)

    def conflict(
        self,
        row: Key,
        *,
        changes: Mapping[str, Any] | None = None,
        operations: Iterable[str] = WRITE_OPERATIONS,
        nth: int = 1,
        times: int = 1,
    ) -> Conflict:
        hook = Conflict(f"another writer changes {row} before write {nth}", row, frozenset(operations), nth, times,
                        changes=dict(changes or {}))  # fmt: skip
        return self._add(hook)

    def before_write(
        self, row: Key, callback: Callable[[], object], *, operations: Iterable[str] = WRITE_OPERATIONS, nth: int = 1
    ) -> BeforeWrite:
        hook = BeforeWrite(f"callback before write {nth} of {row}", row, frozenset(operations), nth,
                           callback=callback)  # fmt: skip
        return self._add(hook)

    def unfired(self) -> list[Hook]:
        return [hook for hook in self.hooks if hook.fired < hook.times]

    def writes_to(self, row: Key) -> list[Write]:
        return [write for write in self.writes if row in write.rows]

    def _add(self, hook: Hook) -> Any:
        if hook.operations - WRITE_OPERATIONS:
            raise ValueError(f"unknown operations {sorted(hook.operations - WRITE_OPERATIONS)}")
        self.hooks.append(hook)
        return hook

    # ---- the TableClient surface -----------------------------------------------------------------------

    def create_table(self, **_: Any) -> None:
        """The table always exists: Azure answers 409, raised as ResourceExistsError."""
        raise _sdk_error(ServiceRefusal(409, "TableAlreadyExists", "The table specified already exists."))

    def get_entity(self, partition_key: str, row_key: str, *, select: str | list[str] | None = None,
                   **_: Any) -> TableEntity:  # fmt: skip
        with self._lock:
            row = self._rows.get((partition_key, row_key))
            if row is None:
                raise _sdk_error(_not_found())
            return _entity(row, select)

    def create_entity(self, entity: Mapping[str, Any], **_: Any) -> dict[str, Any]:
        wire = _to_wire(entity)
        return self._send(Write("create", "POST", (_key(wire),)), lambda: self._metadata(self._create(wire)))

    def update_entity(
        self,
        entity: Mapping[str, Any],
        mode: UpdateMode = UpdateMode.MERGE,
        *,
        etag: str | None = None,
        match_condition: MatchConditions | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        etag = _condition(entity, etag, match_condition)
        wire = _to_wire(entity)
        method = _method(mode)
        return self._send(Write("update", method, (_key(wire),)),
                          lambda: self._metadata(self._update(wire, mode, etag)))  # fmt: skip

    def upsert_entity(self, entity: Mapping[str, Any], mode: UpdateMode = UpdateMode.MERGE, **_: Any) -> dict[str, Any]:
        wire = _to_wire(entity)
        method = _method(mode)
        return self._send(Write("upsert", method, (_key(wire),)), lambda: self._metadata(self._upsert(wire, mode)))

    def delete_entity(self, *args: Any, **kwargs: Any) -> None:
        """`delete_entity(partition_key, row_key, etag=…, match_condition=…)` or `delete_entity(entity)`;
        a row that does not exist is no error (the SDK swallows the 404)."""
        entity = kwargs.pop("entity", None) or (args[0] if args and isinstance(args[0], Mapping) else None)
        if entity is not None:
            key = (entity["PartitionKey"], entity["RowKey"])
        else:
            key = (kwargs.pop("partition_key", None) or args[0], kwargs.pop("row_key", None) or args[1])
        etag = _condition(entity or {}, kwargs.pop("etag", None), kwargs.pop("match_condition", None))
        try:
            self._send(Write("delete", "DELETE", (key,)), lambda: self._delete(key, etag))
        except ResourceNotFoundError:
            return

    def query_entities(
        self,
        query_filter: str,
        *,
        results_per_page: int | None = None,
        select: str | list[str] | None = None,
        parameters: dict[str, Any] | None = None,
        **_: Any,
    ) -> Iterator[TableEntity]:
        """Lazy like the SDK's ItemPaged: the query runs when iteration starts; rows in key order (one page:
        `results_per_page` changes nothing the engine sees)."""
        condition = parse_filter(_parameter_filter_substitution(parameters, query_filter))

        def rows() -> Iterator[TableEntity]:
            with self._lock:
                found = [_entity(self._rows[key], select) for key in sorted(self._rows)
                         if condition(_entity(self._rows[key], None))]  # fmt: skip
            yield from found

        return rows()

    def submit_transaction(self, operations: Iterable[Any], **_: Any) -> list[Mapping[str, Any]]:
        prepared: list[tuple[str, Wire, dict[str, Any]]] = []
        partition: str | None = None
        for operation in operations:
            kind, entity, options = operation if len(operation) == 3 else (*operation, {})
            if "PartitionKey" not in entity or "RowKey" not in entity:
                raise ValueError("PartitionKey and/or RowKey were not provided in entity")
            if partition is None:
                partition = entity["PartitionKey"]
            elif entity["PartitionKey"] != partition:
                raise ValueError("Partition Keys in the batch must all be the same.")
            name = str(getattr(kind, "value", kind)).lower()
            if name not in ("create", "update", "upsert", "delete"):
                raise ValueError(f"Unrecognized operation: {kind}")
            options = dict(options)
            if name in ("update", "delete"):
                options["etag"] = _condition(entity, options.get("etag"), options.get("match_condition"))
            wire = _to_wire(entity) if name != "delete" else {"PartitionKey": partition, "RowKey": entity["RowKey"]}
            prepared.append((name, wire, options))
        if not prepared:
            return []
        write = Write("transaction", "POST", tuple(_key(wire) for _, wire, _ in prepared))
        return self._send(write, lambda: self._transaction(prepared))

    # ---- the service ---------------------------------------------------------------------------------

    def _send(self, write: Write, apply: Callable[[], Any]) -> Any:
        """One write through the fault hooks: callbacks and other writers first, then the write itself,
        then (if scripted) its answer lost and what the SDK's retry policy does about it."""
        with self._lock:
            due = [hook for hook in self.hooks if hook.due(write)]
        for hook in due:
            if isinstance(hook, BeforeWrite):
                hook.record(f"{write.operation} of {write.rows[0]}")
                hook.callback()
            elif isinstance(hook, Conflict):
                self._other_writer(hook)
        lost = next((hook for hook in due if isinstance(hook, LoseAnswer)), None)
        self.writes.append(write)
        try:
            result = self._answer(apply)
        except HttpResponseError as exc:
            write.outcome = str(exc.status_code)
            raise
        write.outcome = "ok"
        if lost is None:
            return result
        retried = lost.sdk_retries(write.method)
        lost.record(f"{write.operation} {write.method} applied, answer lost; SDK {'retried' if retried else 'gave up'}")
        write.outcome = "applied, answer lost"
        if not retried:
            raise ServiceResponseError("Connection aborted: the answer to an applied write was lost (fault hook)")
        again = Write(write.operation, write.method, write.rows, "retry")
        self.writes.append(again)
        try:
            return self._answer(apply)
        except HttpResponseError as exc:
            again.outcome = f"retry: {exc.status_code}"
            raise

    def _answer(self, apply: Callable[[], Any]) -> Any:
        """The service's answer to one request, raised as the SDK raises it."""
        with self._lock:
            try:
                return apply()
            except ServiceRefusal as refusal:
                raise _sdk_error(refusal) from None

    def _other_writer(self, hook: Conflict) -> None:
        with self._lock:
            row = self._rows.get(hook.row)
            if row is None:
                raise AssertionError(f"conflict hook on {hook.row}: no such row to change")
            wire = dict(row.wire)
            wire.update(_to_wire({"PartitionKey": hook.row[0], "RowKey": hook.row[1], **hook.changes}))
            self._store(wire)
            hook.record(f"{hook.row} changed by another writer")

    def _create(self, wire: Wire) -> _Row:
        _check(wire)
        if _key(wire) in self._rows:
            raise _exists()
        return self._store(wire)

    def _update(self, wire: Wire, mode: UpdateMode, etag: str | None) -> _Row:
        _check(wire)
        current = self._rows.get(_key(wire))
        if current is None:
            raise _not_found()
        if etag is not None and etag != current.etag:
            raise _modified()
        return self._store(_merged(current.wire, wire) if mode == UpdateMode.MERGE else wire)

    def _upsert(self, wire: Wire, mode: UpdateMode) -> _Row:
        _check(wire)
        current = self._rows.get(_key(wire))
        if current is not None and mode == UpdateMode.MERGE:
            return self._store(_merged(current.wire, wire))
        return self._store(wire)

    def _delete(self, key: Key, etag: str | None) -> None:
        current = self._rows.get(key)
        if current is None:
            raise _not_found()
        if etag is not None and etag != current.etag:
            raise _modified()
        del self._rows[key]

    def _transaction(self, prepared: list[tuple[str, Wire, dict[str, Any]]]) -> list[Mapping[str, Any]]:
        if len(prepared) > TRANSACTION_LIMIT:
            raise _transaction_error(0, ServiceRefusal(400, "InvalidInput", "The batch request operation exceeds "
                                                       "the maximum 100 changes per change set."))  # fmt: skip
        keys = [_key(wire) for _, wire, _ in prepared]
        if len(set(keys)) != len(keys):
            index = next(i for i, key in enumerate(keys) if key in keys[:i])
            raise _transaction_error(index, ServiceRefusal(400, "InvalidDuplicateRow", "The batch request contains "
                                                           "multiple changes with same row key."))  # fmt: skip
        saved = dict(self._rows)
        results: list[Mapping[str, Any]] = []
        for index, (name, wire, options) in enumerate(prepared):
            try:
                if name == "create":
                    results.append({"etag": self._create(wire).etag})
                elif name == "update":
                    mode = options.get("mode", UpdateMode.MERGE)
                    results.append({"etag": self._update(wire, mode, options.get("etag")).etag})
                elif name == "upsert":
                    results.append({"etag": self._upsert(wire, options.get("mode", UpdateMode.MERGE)).etag})
                else:
                    self._delete(_key(wire), options.get("etag"))
                    results.append({})
            except ServiceRefusal as refusal:
                self._rows = saved
                raise _transaction_error(index, refusal) from None
        return results

    def _store(self, wire: Wire) -> _Row:
        moment = max(datetime.now(UTC), self._clock + timedelta(microseconds=1))
        self._clock = moment
        stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"
        row = _Row({k: v for k, v in wire.items() if k != "Timestamp"}, f"W/\"datetime'{quote(stamp)}'\"", stamp)
        self._rows[_key(wire)] = row
        return row

    def _metadata(self, row: _Row) -> dict[str, Any]:
        return {"date": datetime.now(UTC), "etag": row.etag, "version": "2019-02-02"}

    def __enter__(self) -> FakeTableClient:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def close(self) -> None:
        return None


# ---- entities -----------------------------------------------------------------------------------------


def _to_wire(entity: Mapping[str, Any]) -> Wire:
    """The SDK's own conversion (TypeError for a plain int ≥ 2^31 or an unsupported type)."""
    wire = _add_entity_properties(entity)
    for name in ("PartitionKey", "RowKey"):
        if not isinstance(wire.get(name), str):
            raise ValueError(f"{name} must be present in an entity, as a string")
        wire.pop(f"{name}@odata.type", None)
    wire.pop("odata.etag", None)
    return wire


def _key(wire: Mapping[str, Any]) -> Key:
    return wire["PartitionKey"], wire["RowKey"]


def _method(mode: UpdateMode) -> str:
    if mode not in (UpdateMode.MERGE, UpdateMode.REPLACE):
        raise ValueError(f"Mode type '{mode}' is not supported.")
    return "PATCH" if mode == UpdateMode.MERGE else "PUT"


def _condition(entity: Mapping[str, Any], etag: str | None, match_condition: MatchConditions | None) -> str | None:
    """The ETag to match, validated like the SDK (IfNotModified needs an ETag; Unconditionally takes none)."""
    if match_condition and not etag and isinstance(entity, TableEntity):
        etag = entity.metadata.get("etag")
    condition = _get_match_condition(etag=etag, match_condition=match_condition or MatchConditions.Unconditionally)
    return etag if condition == MatchConditions.IfNotModified else None


def _merged(current: Wire, changes: Wire) -> Wire:
    merged = dict(current)
    for name, value in changes.items():
        if not name.endswith("@odata.type"):
            merged.pop(f"{name}@odata.type", None)
        merged[name] = value
    return merged


def _entity(row: _Row, select: str | list[str] | None) -> TableEntity:
    """The row as the SDK reads it (only the `select`ed properties, if any; the ETag in its metadata)."""
    wire = copy.deepcopy(row.wire)
    if select:
        names = set(select.split(",") if isinstance(select, str) else select)
        wire = {k: v for k, v in wire.items() if k.split("@", 1)[0] in names}
    else:
        wire["Timestamp"] = row.timestamp
    wire["odata.etag"] = row.etag
    return _convert_to_entity(wire)  # type: ignore[no-any-return]


def _check(wire: Wire) -> None:
    """Azure's limits on keys, properties and entity size (400, like the service)."""
    size = 4
    for name in ("PartitionKey", "RowKey"):
        key = wire[name]
        if len(key) > MAX_KEY_CHARS or _BAD_KEY.search(key):
            raise ServiceRefusal(400, "InvalidInput", f"One of the request inputs is not valid ({name}).")
        size += 2 * _utf16_units(key)
    names = [n for n in wire if not n.endswith("@odata.type") and n not in ("PartitionKey", "RowKey")]
    if len(names) > MAX_PROPERTIES:
        raise ServiceRefusal(400, "TooManyProperties", "The entity contains more properties than allowed.")
    for name in names:
        size += 8 + 2 * len(name) + _value_size(wire[name], wire.get(f"{name}@odata.type"))
    if size > MAX_ENTITY_BYTES:
        raise ServiceRefusal(400, "EntityTooLarge", "The entity is larger than the maximum allowed size (1MB).")


def _value_size(value: Any, edm: str | None) -> int:
    if value is None:
        return 0
    if edm == "Edm.Binary":
        length = len(base64.b64decode(value))
        if length > MAX_BINARY_BYTES:
            raise ServiceRefusal(400, "PropertyValueTooLarge", "The property value exceeds the maximum allowed "
                                 "size (64KB).")  # fmt: skip
        return 4 + length
    if edm in ("Edm.Int64", "Edm.DateTime", "Edm.Double"):
        return 8
    if edm == "Edm.Guid":
        return 16
    if isinstance(value, bool):
        return 1
    if isinstance(value, int):
        return 4
    if isinstance(value, float):
        return 8
    units = _utf16_units(str(value))
    if units > MAX_STRING_UNITS:
        raise ServiceRefusal(400, "PropertyValueTooLarge", "The property value exceeds the maximum allowed size "
                             "(64KB). If the property value is a string, it is UTF-16 encoded and the maximum "
                             "number of characters should be 32K or less.")  # fmt: skip
    return 4 + 2 * units


def _utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


# ---- OData filters ------------------------------------------------------------------------------------

Condition = Callable[[Mapping[str, Any]], bool]
_TOKEN = re.compile(
    r"\s*(?:(?P<open>\()|(?P<close>\))|datetime'(?P<datetime>[^']*)'|guid'(?P<guid>[^']*)'"
    r"|'(?P<string>(?:[^']|'')*)'|(?P<number>-?\d+(?:\.\d+)?)(?P<long>L)?|(?P<word>[A-Za-z_][A-Za-z0-9_]*))"
)
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
}


def parse_filter(text: str) -> Condition:
    """An OData `$filter` (comparisons of a property with a literal, `and`, `or`, `not`, parentheses), as
    the SDK sends it after substituting `parameters`. A property an entity lacks matches nothing."""
    tokens = _tokens(text)
    condition, rest = _or(tokens)
    if rest:
        raise ValueError(f"unsupported filter {text!r}: unexpected {rest[0][1]!r}")
    return condition


def _tokens(text: str) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    position = 0
    while position < len(text.rstrip()):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise ValueError(f"unsupported filter {text!r} at {position}")
        position = match.end()
        kind = match.lastgroup if match.lastgroup != "long" else "number"
        if kind == "datetime":
            found.append(("value", datetime.fromisoformat(match["datetime"].replace("Z", "+00:00"))))
        elif kind == "guid":
            found.append(("value", UUID(match["guid"])))
        elif kind == "string":
            found.append(("value", match["string"].replace("''", "'")))
        elif kind == "number":
            number = match["number"]
            found.append(("value", float(number) if "." in number else int(number)))
        elif kind == "word" and match["word"] in ("true", "false"):
            found.append(("value", match["word"] == "true"))
        else:
            found.append((kind or "", match[kind or 0]))
    return found


def _or(tokens: list[tuple[str, Any]]) -> tuple[Condition, list[tuple[str, Any]]]:
    left, tokens = _and(tokens)
    while tokens and tokens[0] == ("word", "or"):
        right, tokens = _and(tokens[1:])
        left = (lambda a, b: lambda e: a(e) or b(e))(left, right)
    return left, tokens


def _and(tokens: list[tuple[str, Any]]) -> tuple[Condition, list[tuple[str, Any]]]:
    left, tokens = _unary(tokens)
    while tokens and tokens[0] == ("word", "and"):
        right, tokens = _unary(tokens[1:])
        left = (lambda a, b: lambda e: a(e) and b(e))(left, right)
    return left, tokens


def _unary(tokens: list[tuple[str, Any]]) -> tuple[Condition, list[tuple[str, Any]]]:
    if tokens and tokens[0] == ("word", "not"):
        inner, rest = _unary(tokens[1:])
        return (lambda e: not inner(e)), rest
    if tokens and tokens[0][0] == "open":
        inner, rest = _or(tokens[1:])
        if not rest or rest[0][0] != "close":
            raise ValueError("unbalanced parentheses in filter")
        return inner, rest[1:]
    if len(tokens) < 3 or tokens[0][0] != "word" or tokens[1][0] != "word" or tokens[2][0] != "value":
        raise ValueError(f"unsupported filter near {tokens[:3]}")
    name, operator, literal = tokens[0][1], tokens[1][1], tokens[2][1]
    if operator not in _COMPARE:
        raise ValueError(f"unsupported operator {operator!r}")
    compare = _COMPARE[operator]

    def condition(entity: Mapping[str, Any]) -> bool:
        value = entity.get(name)
        if isinstance(value, EntityProperty):
            value = value.value
        if value is None or not _comparable(value, literal):
            return False
        return compare(value, literal)

    return condition, tokens[3:]


def _comparable(value: Any, literal: Any) -> bool:
    if isinstance(value, bool) or isinstance(literal, bool):
        return isinstance(value, bool) and isinstance(literal, bool)
    if isinstance(value, int | float) and isinstance(literal, int | float):
        return True
    return type(value) is type(literal) or (isinstance(value, datetime) and isinstance(literal, datetime))
