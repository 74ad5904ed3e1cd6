"""`python -m shared.ops`: what the agent is doing, from its own tables — and a way to release a stuck job.

    python -m shared.ops status                 jobs by state: age, attempts, progress (files, bytes), last error
    python -m shared.ops show JOB_ID            one job's record, plan and work items
    python -m shared.ops release JOB_ID         release a stuck job through the Registry (asks first)

Storage, first found: `--settings FILE` (a local.settings.json: its AzureWebJobsStorage or
AzureWebJobsStorage__tableServiceUri), `--table-endpoint URL` (Azure AD: DefaultAzureCredential, the
operator needs Storage Table Data Reader), the same settings in the environment, or a running local stack
(.devstack/state.json). `release` also needs the Clearance connection file (CLEARANCE_CONNECTION_FILE or
_PATH in the settings file or environment): lock tokens are stored sealed under a key derived from it
(shared/secrets/lock_tokens.py). `status` and `show` work without it, but then cannot tell which plan is
the current lock's (no progress figures). Read-only unless `release` is confirmed; no lock token,
connection file or key is ever printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from shared.agent.ledger import Ledger, generation_of
from shared.agent.progress import JobProgress, job_progress
from shared.agent.records import LockRecord, LockRecords, log_job_end
from shared.registry.client import RegistryClient
from shared.registry.connection_file import ConnectionFile, ConnectionFileError, parse_connection_file
from shared.registry.errors import NotOurs, RegistryError
from shared.secrets.lock_tokens import lock_token_sealer
from shared.settings import StorageSettings
from shared.storage import table_client

LOCAL_STATE = Path(".devstack/state.json")
DEFAULT_TABLE = "clearancelocks"


class OpsError(Exception):
    """Something the operator must fix; the message says what."""


def main(argv: list[str] | None = None, *, out: TextIO = sys.stdout, ask: Callable[[str], str] = input) -> int:
    args = _parser().parse_args(argv)
    try:
        values = _values(args)
        table = table_client(_storage(args, values), args.table or values.get("LOCKS_TABLE_NAME") or DEFAULT_TABLE)
        connection = _connection(values, required=args.command == "release")
        sealer = lock_token_sealer(connection) if connection is not None else None
        records, ledger = LockRecords(table, sealer=sealer), Ledger(table)
        if sealer is None:
            print("(no connection file given: lock tokens stay sealed, progress figures are not shown)", file=out)
        if args.command == "status":
            return status(records, ledger, out)
        if args.command == "show":
            return show(records, ledger, args.job_id, out)
        assert connection is not None
        return release(records, args.job_id, _registry(connection, values), out, ask=ask, assume_yes=args.yes)
    except OpsError as exc:
        print(f"error: {exc}", file=out)
        return 2


# ---- commands ------------------------------------------------------------------------------------------


def status(records: LockRecords, ledger: Ledger, out: TextIO) -> int:
    jobs = sorted(records.all(), key=lambda r: r.created, reverse=True)
    if not jobs:
        print("No jobs recorded.", file=out)
        return 0
    now = datetime.now(UTC)
    by_state: dict[str, int] = {}
    for record in jobs:
        by_state[record.state] = by_state.get(record.state, 0) + 1
    print("  ".join(f"{state}: {count}" for state, count in sorted(by_state.items())), file=out)
    print(
        f"{'job':<38}{'type':<13}{'state':<19}{'age':>7}{'tries':>6}{'items':>9}{'files':>6}{'MiB':>9}  last error",
        file=out,
    )
    for record in jobs:
        progress = job_progress(record, ledger)
        items = f"{progress.items_done}/{progress.items_total}" if progress.items_total else "-"
        print(
            f"{record.job_id:<38}{record.job_type:<13}{record.state:<19}{_age(now - record.created):>7}"
            f"{record.attempts + progress.attempts:>6}{items:>9}{progress.files_delivered:>6}"
            f"{progress.bytes_done / 2**20:>9.1f}  {_one_line(progress.last_error)}",
            file=out,
        )
    return 0


def show(records: LockRecords, ledger: Ledger, job_id: str, out: TextIO) -> int:
    record = records.get(job_id)
    if record is None:
        raise OpsError(f"no job {job_id} in the table (check --table / LOCKS_TABLE_NAME)")
    progress = job_progress(record, ledger)
    print(f"Job {record.job_id} ({record.job_type})", file=out)
    for name, value in _record_view(record, progress).items():
        print(f"  {name:<16}{value}", file=out)
    plan = ledger.get_plan(record.job_id, generation_of(record.lock_token))
    if plan is None:
        print("  (not planned yet)", file=out)
        return 0
    print(
        f"Plan {plan.generation}: {plan.state}; items {plan.items_total} (remaining {plan.items_remaining}, "
        f"delivered {plan.items_delivered}, missing {plan.items_missing}, failed {plan.items_failed})",
        file=out,
    )
    for gap in ledger.gaps(plan) if plan.gaps_total else []:
        print(f"  missing: {gap}", file=out)
    print(f"  {'item':<34}{'state':<11}{'tries':>6}{'files':>6}{'MiB':>9}  what / last error", file=out)
    for item in ledger.items(plan):
        detail = item.last_error or "; ".join(item.missing) or item.label()
        print(
            f"  {item.item_id:<34}{item.state:<11}{item.attempts:>6}{item.files_delivered:>6}"
            f"{(item.bytes_delivered + item.bytes_in_flight) / 2**20:>9.1f}  {_one_line(detail)}",
            file=out,
        )
        for entry in item.files:
            print(f"      {entry.state:<11}{entry.name}  {entry.file_id or ''}", file=out)
    return 0


def release(
    records: LockRecords,
    job_id: str,
    registry: RegistryClient,
    out: TextIO,
    *,
    ask: Callable[[str], str],
    assume_yes: bool,
) -> int:
    record = records.get(job_id)
    if record is None:
        raise OpsError(f"no job {job_id} in the table")
    if record.terminal:
        raise OpsError(f"job {job_id} already ended as {record.state}: nothing to release")
    if not assume_yes:
        answer = ask(f"Release job {job_id} ({record.job_type}, {record.state}) so it can be picked up again? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("Not released.", file=out)
            return 1
    try:
        registry.release(job_id, record.lock_token)
    except NotOurs as exc:
        records.transition(job_id, "Lost", generation=record.generation, last_error=f"operator release: {exc}")
        print(f"The Registry says the lock is no longer ours ({exc.status}); the record is marked Lost.", file=out)
        return 1
    except RegistryError as exc:
        raise OpsError(f"the Registry refused the release: {exc}") from None
    if records.transition(job_id, "Released", generation=record.generation, last_error="released by an operator"):
        log_job_end(record, "Released", "released by an operator")
    print(f"Released job {job_id}.", file=out)
    return 0


# ---- configuration ------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m shared.ops", description=__doc__.split("\n\n")[0])
    parser.add_argument("--settings", type=Path, help="a local.settings.json-shaped file (storage, connection file)")
    parser.add_argument("--table-endpoint", help="https://<account>.table.core.windows.net (Azure AD sign-in)")
    parser.add_argument("--table", help=f"the lock table (default: LOCKS_TABLE_NAME or {DEFAULT_TABLE})")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("status", help="every job: state, age, attempts, progress, last error")
    show = commands.add_parser("show", help="one job's record, plan and work items")
    show.add_argument("job_id")
    release = commands.add_parser("release", help="release a stuck job through the Registry (asks first)")
    release.add_argument("job_id")
    release.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    return parser


def _values(args: argparse.Namespace) -> dict[str, str]:
    values = {k: v for k, v in os.environ.items() if k.startswith(("AzureWebJobsStorage", "CLEARANCE_", "LOCKS_"))}
    if args.settings is not None:
        try:
            document = json.loads(args.settings.read_text(encoding="utf-8-sig"))
            values.update({str(k): str(v) for k, v in document["Values"].items()})
        except (OSError, ValueError, KeyError, AttributeError) as exc:
            raise OpsError(f"cannot read the Values of {args.settings} ({type(exc).__name__})") from None
    return values


def _storage(args: argparse.Namespace, values: Mapping[str, str]) -> StorageSettings:
    if args.table_endpoint:
        return StorageSettings(table_service_uri=args.table_endpoint)
    if values.get("AzureWebJobsStorage"):
        return StorageSettings(connection_string=values["AzureWebJobsStorage"])
    if values.get("AzureWebJobsStorage__tableServiceUri"):
        return StorageSettings(
            table_service_uri=values["AzureWebJobsStorage__tableServiceUri"],
            managed_identity_client_id=values.get("AzureWebJobsStorage__clientId") or None,
        )
    if LOCAL_STATE.is_file():
        state = json.loads(LOCAL_STATE.read_text(encoding="utf-8"))
        return StorageSettings(connection_string=state["storage_connection_string"])
    raise OpsError(
        "no storage given: use --settings FILE, --table-endpoint URL, set AzureWebJobsStorage, or start the "
        "local stack (make stack)"
    )


def _connection(values: Mapping[str, str], *, required: bool) -> ConnectionFile | None:
    text = values.get("CLEARANCE_CONNECTION_FILE", "")
    path = values.get("CLEARANCE_CONNECTION_FILE_PATH", "")
    try:
        if not text.strip() and path:
            text = Path(path).read_text(encoding="utf-8-sig")
        if not text.strip():
            if not required:
                return None
            raise OpsError("release needs the Clearance connection file: CLEARANCE_CONNECTION_FILE or _PATH")
        return parse_connection_file(text)
    except ConnectionFileError as exc:
        raise OpsError(f"the Clearance connection file: {exc}") from None
    except OSError as exc:
        raise OpsError(f"CLEARANCE_CONNECTION_FILE_PATH cannot be read: {exc.strerror}") from None


def _registry(connection: ConnectionFile, values: Mapping[str, str]) -> RegistryClient:
    agent_id = values.get("CLEARANCE_AGENT_ID") or connection.service_principal_id
    return RegistryClient(connection, agent_id, agent_service_url=values.get("CLEARANCE_AGENT_SERVICE_URL") or None)


# ---- formatting ----------------------------------------------------------------------------------------


def _record_view(record: LockRecord, progress: JobProgress) -> dict[str, str]:
    return {
        "state": record.state,
        "lock token": "(recorded; not shown)",
        "lock expires": record.lock_expires.isoformat(timespec="seconds"),
        "created": record.created.isoformat(timespec="seconds"),
        "finished": record.finished.isoformat(timespec="seconds") if record.finished else "-",
        "planning tries": str(record.attempts),
        "progress": (
            f"{progress.items_done}/{progress.items_total} items, {progress.files_delivered} files, "
            f"{progress.bytes_done / 2**20:.1f} MiB"
        ),
        "last error": _one_line(record.last_error) or "-",
    }


def _age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


def _one_line(text: str, limit: int = 90) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


if __name__ == "__main__":
    sys.exit(main())
