"""`python -m shared.ops`: what the agent is doing, from its own tables — a preflight, and a way to release a
stuck job.

    python -m shared.ops [--settings FILE] status [--state S,...] [--since 2h] [--json]
    python -m shared.ops [--settings FILE] show JOB_ID [--json]
    python -m shared.ops [--settings FILE] release JOB_ID [--yes]
    python -m shared.ops [--settings FILE] check

The storage options (`--settings`, `--table-endpoint`, `--table`) go before or after the command. Where the
storage is found, and as whom: shared/ops/access.py. Roles: `status`/`show` need Storage Table Data Reader
and never write (the table is never created); `release` needs Storage Table Data Contributor and the
Clearance connection file (CLEARANCE_CONNECTION_FILE or _PATH; a Key Vault reference is read with your
sign-in: Key Vault Secrets User); `check` needs what the app needs (docs/deployment.md, Operating it).
Results go to stdout, errors to stderr as one line, with the exit codes of shared/ops/errors.py. No lock
token, connection file or key is ever printed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from shared.agent.locks.records import LockRecord, LockRecords, RecordChanged
from shared.agent.states import RecordState
from shared.agent.work.ending import end_job
from shared.agent.work.ledger import Ledger, Plan, WorkItem
from shared.agent.work.progress import JobProgress, summarize
from shared.ops import access
from shared.ops.access import ROLE_WRITE, storage_errors
from shared.ops.errors import Exit, OpsError
from shared.registry.client import RegistryClient
from shared.registry.connection_file import ConnectionFile, ConnectionFileError, parse_connection_file
from shared.registry.errors import NotOurs, RegistryError, RegistryUnauthorized, RegistryUnavailable
from shared.secrets.lock_tokens import lock_token_sealer

STATES = tuple(RecordState)


@dataclass
class Context:
    """What every command works with."""

    values: dict[str, str]
    table_name: str
    records: LockRecords
    ledger: Ledger
    out: TextIO
    err: TextIO
    connection: ConnectionFile | None = None
    """The Clearance connection file, when given: it opens the sealed lock tokens (needed by `release`)."""


def main(
    argv: list[str] | None = None,
    *,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    ask: Callable[[str], str] = input,
    local: access.LocalStorage | None = None,
) -> int:
    """`local`: a development machine's own storage emulator, tried last (devstack/ops.py gives it)."""
    args = _parser().parse_args(argv)
    for name in ("settings", "table_endpoint", "table"):  # not given anywhere (SUPPRESS leaves them unset)
        if not hasattr(args, name):
            setattr(args, name, None)
    try:
        values = access.read_values(args.settings)
        if args.command == "check":
            from shared.ops.check import run_checks

            return run_checks(values, args.table_endpoint, args.table, out, local=local)
        storage = access.choose_storage(args.table_endpoint, values, local)
        print(f"storage: {storage.described}", file=err)
        table_name = args.table or values.get("LOCKS_TABLE_NAME") or access.DEFAULT_TABLE
        table = access.open_table(storage, table_name)
        # lock tokens are sealed under a key derived from the connection file: only `release` needs it
        connection = _connection(values, required=args.command == "release")
        sealer = lock_token_sealer(connection) if connection is not None else None
        if sealer is None:
            print("(no connection file given: lock tokens stay sealed; `release` needs it)", file=err)
        records = LockRecords(table, sealer=sealer, create_table=False)
        context = Context(values, table_name, records, Ledger(table), out, err, connection)
        if args.command == "status":
            return status(context, states=_states(args.state), since=_since(args.since), as_json=args.json)
        if args.command == "show":
            return show(context, args.job_id, as_json=args.json)
        return release(context, args.job_id, ask=ask, assume_yes=args.yes)
    except OpsError as exc:
        print(f"error: {exc}", file=err)
        return int(exc.code)


# ---- status and show ------------------------------------------------------------------------------------


def status(context: Context, *, states: frozenset[str], since: datetime | None, as_json: bool) -> int:
    with storage_errors(context.table_name):
        jobs = [
            (record, _progress(context, record))
            for record in sorted(context.records.all(), key=lambda r: r.created, reverse=True)
            if (not states or record.state in states) and (since is None or record.created >= since)
        ]
    now = datetime.now(UTC)
    out = context.out
    if as_json:
        json.dump([_job_json(record, progress, now) for record, progress in jobs], out, indent=2)
        print(file=out)
        return Exit.OK
    if not jobs:
        print("No jobs recorded." if not states and since is None else "No jobs match.", file=out)
        return Exit.OK
    by_state: dict[str, int] = {}
    for record, _ in jobs:
        by_state[record.state] = by_state.get(record.state, 0) + 1
    print("  ".join(f"{state}: {count}" for state, count in sorted(by_state.items())), file=out)
    print(
        f"{'job':<38}{'type':<13}{'state':<19}{'age':>7}{'tries':>6}{'items':>9}{'files':>6}{'MiB':>9}  last error",
        file=out,
    )
    for record, (progress, _, _) in jobs:
        items = f"{progress.items_done}/{progress.items_total}" if progress.items_total else "-"
        print(
            f"{record.job_id:<38}{record.job_type:<13}{record.state:<19}{_age(now - record.created):>7}"
            f"{record.attempts + progress.attempts:>6}{items:>9}{progress.files_delivered:>6}"
            f"{progress.bytes_done / 2**20:>9.1f}  {_one_line(progress.last_error)}",
            file=out,
        )
    return Exit.OK


def show(context: Context, job_id: str, *, as_json: bool) -> int:
    with storage_errors(context.table_name):
        record = _record(context, job_id)
        progress, plan, items = _progress(context, record)
    out, now = context.out, datetime.now(UTC)
    if as_json:
        document = _job_json(record, (progress, plan, items), now)
        document["plan"] = _plan_json(plan)
        document["items"] = [_item_json(item) for item in items]
        json.dump(document, out, indent=2)
        print(file=out)
        return Exit.OK
    print(f"Job {record.job_id} ({record.job_type})", file=out)
    for name, value in _record_view(record, progress, items, now).items():
        print(f"  {name:<16}{value}", file=out)
    if plan is None:
        print("  (not planned yet)", file=out)
        return Exit.OK
    print(
        f"Plan {plan.generation}: {plan.state}; items {plan.items_total} (remaining {plan.items_remaining}, "
        f"delivered {plan.items_delivered}, missing {plan.items_missing}, failed {plan.items_failed})",
        file=out,
    )
    for gap in context.ledger.gaps(plan) if plan.gaps_total else []:
        print(f"  missing: {gap}", file=out)
    print(f"  {'item':<34}{'state':<11}{'tries':>6}{'files':>6}{'MiB':>9}  what / last error", file=out)
    for item in items:
        detail = item.last_error or "; ".join(item.missing) or item.label()
        print(
            f"  {item.item_id:<34}{item.state:<11}{item.attempts:>6}{item.files_delivered:>6}"
            f"{(item.bytes_delivered + item.bytes_in_flight) / 2**20:>9.1f}  {_one_line(detail)}",
            file=out,
        )
        for entry in item.files:
            print(f"      {entry.state:<11}{entry.name}  {entry.file_id or ''}", file=out)
    return Exit.OK


# ---- release --------------------------------------------------------------------------------------------


RELEASE_NEEDS = (
    "Releasing calls the Registry with the lock token recorded in the table (needs the Clearance connection "
    f"file) and marks the record Released ({ROLE_WRITE} on the storage account)."
)


def release(context: Context, job_id: str, *, ask: Callable[[str], str], assume_yes: bool) -> int:
    out = context.out
    with storage_errors(context.table_name):
        record = _record(context, job_id)
        if record.terminal:
            raise OpsError(f"job {job_id} already ended as {record.state}: nothing to release", Exit.NOT_FOUND)
        progress, _, items = _progress(context, record)
    assert context.connection is not None  # main() asks for it first: a missing connection file is said first
    registry = _registry(context.connection, context.values)
    now = datetime.now(UTC)
    print(f"Job {record.job_id} ({record.job_type}), {record.state}", file=out)
    view = _record_view(record, progress, items, now)
    for name in ("lock expires", "last progress", "progress", "last error"):
        print(f"  {name:<16}{view[name]}", file=out)
    print(RELEASE_NEEDS, file=out)
    if not assume_yes:
        answer = ask(f"Release job {job_id} so it can be picked up again? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("Not released.", file=out)
            return Exit.DECLINED
    try:
        registry.release(job_id, record.lock_token)
    except NotOurs as exc:
        _mark(
            context,
            record,
            RecordState.LOST,
            f"operator release: {exc}",
            after="the Registry said the lock is not ours",
        )
        print(f"The Registry says the lock is no longer ours ({exc.status}); the record is marked Lost.", file=out)
        return Exit.DECLINED
    except RegistryUnauthorized as exc:
        raise OpsError(f"the Registry refused the agent's credentials: {exc}", Exit.FORBIDDEN) from None
    except RegistryUnavailable as exc:
        raise OpsError(f"the Registry cannot be reached: {exc}", Exit.UNREACHABLE) from None
    except RegistryError as exc:
        raise OpsError(f"the Registry refused the release: {exc}", Exit.UNREACHABLE) from None
    _mark(context, record, RecordState.RELEASED, "released by an operator", after="the Registry released it")
    print(f"Released job {job_id}.", file=out)
    return Exit.OK


def _mark(context: Context, record: LockRecord, state: RecordState, reason: str, *, after: str) -> None:
    """Record what happened at the Registry, as every ending does (fenced by the lock's generation, with its
    `Job ended` line); a refused write says so (the Registry already acted)."""
    try:
        with storage_errors(context.table_name, role=ROLE_WRITE, doing="writing"):
            end_job(context.records, record, state, reason)
    except OpsError as exc:
        raise OpsError(
            f"{after}, but the lock record was not marked {state}: {exc} (the agent notices at its next renewal)",
            exc.code,
        ) from None
    except RecordChanged:
        raise OpsError(
            f"{after}, but the lock record kept changing; it was not marked {state}", Exit.UNREACHABLE
        ) from None


def _connection(values: Mapping[str, str], *, required: bool) -> ConnectionFile | None:
    """The Clearance connection file from the settings (its JSON, a Key Vault reference, or a path); None
    when it is not given and not `required`."""
    text = values.get("CLEARANCE_CONNECTION_FILE", "")
    path = values.get("CLEARANCE_CONNECTION_FILE_PATH", "")
    reference = access.key_vault_reference(text)
    if reference is not None:
        text = access.resolve_secret("CLEARANCE_CONNECTION_FILE", reference)
    try:
        if not text.strip() and path:
            text = Path(path).read_text(encoding="utf-8-sig")
        if not text.strip():
            if not required:
                return None
            raise OpsError(
                "release needs the Clearance connection file: CLEARANCE_CONNECTION_FILE (the JSON, or a Key Vault "
                "reference) or CLEARANCE_CONNECTION_FILE_PATH, in --settings FILE or the environment"
            )
        return parse_connection_file(text)
    except ConnectionFileError as exc:
        raise OpsError(f"the Clearance connection file: {exc}") from None
    except OSError as exc:
        raise OpsError(f"CLEARANCE_CONNECTION_FILE_PATH cannot be read: {exc.strerror}") from None


def _registry(connection: ConnectionFile, values: Mapping[str, str]) -> RegistryClient:
    agent_id = values.get("CLEARANCE_AGENT_ID") or connection.service_principal_id
    return RegistryClient(connection, agent_id, agent_service_url=values.get("CLEARANCE_AGENT_SERVICE_URL") or None)


# ---- reading ---------------------------------------------------------------------------------------------


Progress = tuple[JobProgress, Plan | None, list[WorkItem]]


def _record(context: Context, job_id: str) -> LockRecord:
    record = context.records.get(job_id)
    if record is None:
        raise OpsError(
            f"no job {job_id} in table {context.table_name} (check --table / LOCKS_TABLE_NAME)", Exit.NOT_FOUND
        )
    return record


def _progress(context: Context, record: LockRecord) -> Progress:
    plan = context.ledger.get_plan(record.job_id, record.generation)  # readable without the sealed token
    items = context.ledger.items(plan) if plan is not None else []
    return summarize(record, plan, items), plan, items


# ---- arguments -------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: given after the command, an option does not reset what was given before it
    common.add_argument(
        "--settings", type=Path, default=argparse.SUPPRESS, help="a local.settings.json-shaped file (its Values)"
    )
    common.add_argument(
        "--table-endpoint",
        default=argparse.SUPPRESS,
        help="https://<account>.table.core.windows.net (your Azure sign-in, e.g. az login)",
    )
    common.add_argument(
        "--table",
        default=argparse.SUPPRESS,
        help=f"the lock table (default: LOCKS_TABLE_NAME or {access.DEFAULT_TABLE})",
    )
    parser = argparse.ArgumentParser(
        prog="python -m shared.ops", description=(__doc__ or "").split("\n\n")[0], parents=[common]
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    status_parser = commands.add_parser("status", parents=[common], help="jobs: state, age, attempts, progress")
    status_parser.add_argument("--state", help=f"only these states, comma-separated ({', '.join(STATES)})")
    status_parser.add_argument("--since", help="only jobs created since: 30m, 2h, 3d, or a date (2026-05-01)")
    status_parser.add_argument("--json", action="store_true", help="a JSON array instead of the table")
    show_parser = commands.add_parser("show", parents=[common], help="one job's record, plan and work items")
    show_parser.add_argument("job_id")
    show_parser.add_argument("--json", action="store_true", help="one JSON object instead of the text")
    release_parser = commands.add_parser(
        "release", parents=[common], help="release a stuck job through the Registry (shows it, then asks)"
    )
    release_parser.add_argument("job_id")
    release_parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    commands.add_parser(
        "check",
        parents=[common],
        help="preflight with the real settings: Key Vault references, storage, Registry token, VMS cameras",
    )
    return parser


def _states(text: str | None) -> frozenset[str]:
    if not text:
        return frozenset()
    known = {state.lower(): state for state in STATES}
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [part for part in chosen if part.lower() not in known]
    if unknown:
        raise OpsError(f"--state: unknown state {', '.join(unknown)} (one of {', '.join(STATES)})")
    return frozenset(known[part.lower()] for part in chosen)


_DURATION = re.compile(r"^(\d+)\s*([mhd])$")


def _since(text: str | None, now: datetime | None = None) -> datetime | None:
    if not text:
        return None
    now = now or datetime.now(UTC)
    match = _DURATION.match(text.strip().lower())
    if match:
        unit = {"m": "minutes", "h": "hours", "d": "days"}[match[2]]
        return now - timedelta(**{unit: int(match[1])})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise OpsError(f"--since: {text!r} is neither a duration (30m, 2h, 3d) nor a date (2026-05-01)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# ---- formatting ------------------------------------------------------------------------------------------


def _last_progress(items: Iterable[WorkItem]) -> WorkItem | None:
    return max(items, key=lambda item: item.heartbeat or item.updated, default=None)


def _record_view(record: LockRecord, progress: JobProgress, items: list[WorkItem], now: datetime) -> dict[str, str]:
    expires = record.lock_expires
    left = expires - now
    latest = _last_progress(items)
    last = "-"
    if latest is not None:
        moment = latest.heartbeat or latest.updated
        last = f"{_age(now - moment)} ago (item {latest.item_id}, {latest.state})"
    return {
        "state": record.state,
        "lock token": "(recorded; not shown)",
        "lock expires": f"{expires.isoformat(timespec='seconds')} "
        + (f"(in {_age(left)})" if left.total_seconds() >= 0 else f"({_age(-left)} ago: expired)"),
        "created": record.created.isoformat(timespec="seconds"),
        "finished": record.finished.isoformat(timespec="seconds") if record.finished else "-",
        "planning tries": str(record.attempts),
        "last progress": last,
        "progress": (
            f"{progress.items_done}/{progress.items_total} items, {progress.files_delivered} files, "
            f"{progress.bytes_done / 2**20:.1f} MiB"
        ),
        "last error": _one_line(record.last_error) or "-",
    }


def _job_json(record: LockRecord, progress: Progress, now: datetime) -> dict[str, Any]:
    summary, _, items = progress
    latest = _last_progress(items)
    return {
        "job_id": record.job_id,
        "job_type": record.job_type,
        "state": record.state,
        "created": record.created.isoformat(),
        "age_seconds": int((now - record.created).total_seconds()),
        "finished": record.finished.isoformat() if record.finished else None,
        "lock_expires": record.lock_expires.isoformat(),
        "planning_attempts": record.attempts,
        "attempts": record.attempts + summary.attempts,
        "items_total": summary.items_total,
        "items_done": summary.items_done,
        "files_delivered": summary.files_delivered,
        "bytes_done": summary.bytes_done,
        "last_progress": (latest.heartbeat or latest.updated).isoformat() if latest else None,
        "last_error": summary.last_error,
    }


def _plan_json(plan: Plan | None) -> dict[str, Any] | None:
    if plan is None:
        return None
    return {
        "generation": plan.generation,
        "state": plan.state,
        "items_total": plan.items_total,
        "items_remaining": plan.items_remaining,
        "items_delivered": plan.items_delivered,
        "items_missing": plan.items_missing,
        "items_failed": plan.items_failed,
        "gaps_total": plan.gaps_total,
    }


def _item_json(item: WorkItem) -> dict[str, Any]:
    return {
        "item_id": item.item_id,
        "what": item.label(),
        "state": item.state,
        "attempts": item.attempts,
        "files_delivered": item.files_delivered,
        "bytes": item.bytes_delivered + item.bytes_in_flight,
        "heartbeat": item.heartbeat.isoformat() if item.heartbeat else None,
        "last_error": item.last_error,
        "missing": list(item.missing),
        "files": [{"name": f.name, "state": f.state, "file_id": f.file_id or None, "size": f.size} for f in item.files],
    }


def _age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def _one_line(text: str, limit: int = 90) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
