"""`make agent SETTINGS=local.settings.json`: the same agent against real Clearance and a real VMS.

The settings file is shaped like `local.settings.json` (see local.settings.example.json). Storage stays
on a local Azurite (persisted under .devstack/azurite) unless the file sets `AzureWebJobsStorage` to a
real storage account. Runs one local Functions host in the foreground until Ctrl-C.

Against a Registry that is not the local simulator it refuses to start without `--allow-shared-identity`:
Clearance cannot tell two agents with the same connection file apart (locking is idempotent for the same
identity), so a deployed agent with the same identity would work the very same jobs (docs/deployment.md,
"Traps").
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import threading
from pathlib import Path
from urllib.parse import urlsplit

from devstack import ops
from devstack.azurite import Azurite
from devstack.funchost.host import FunctionHost
from devstack.stack import CREDENTIALS_KEY_FILE, DEFAULT_STATE_DIR, REPO_ROOT
from shared.secrets.keyring import LocalKeyFileWrapper
from shared.settings import AgentSettings, SettingsError

LOCAL_STORAGE = ("", "usedevelopmentstorage=true")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
SHARED_IDENTITY_FLAG = "--allow-shared-identity"

AGENT_STORAGE = DEFAULT_STATE_DIR / ops.AGENT_STORAGE.name
"""Where `make ops` looks for the storage of a running `make agent` (devstack/ops.py)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--settings",
        type=Path,
        required=True,
        help="a local.settings.json-shaped file with the agent's app settings (it holds secrets: keep it out of "
        "git); `make stack` writes one for the local stack at .devstack/local.settings.json",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="INFO (default): the agent's lifecycle — ready, polls that lock jobs, plans, files delivered, "
        "'Job ended' lines; DEBUG adds every function run and tracebacks (never SDK header dumps)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="same as --log-level DEBUG")
    parser.add_argument(
        SHARED_IDENTITY_FLAG,
        action="store_true",
        help="start even though the Registry is not the local simulator: every agent (a deployment too) that "
        "uses the same connection file locks and delivers the same jobs as this one",
    )


def registry_hosts(settings: AgentSettings) -> list[str]:
    """Every host the agent reaches Clearance at: the token service, the API, the agent service."""
    connection = settings.connection
    urls = [*connection.sts_base_addresses, *connection.api_base_addresses, settings.agent_service_url or ""]
    return sorted({urlsplit(url).hostname or "" for url in urls if url})


def shared_identity_warning(settings: AgentSettings) -> str | None:
    """Why this agent must not simply start, when the Registry is a real one; None for the local simulator."""
    remote = [host for host in registry_hosts(settings) if host not in LOOPBACK]
    if not remote:
        return None
    return (
        f"This connection file is for a real Clearance Registry ({', '.join(remote)}), as agent "
        f"{settings.agent_id}. Clearance cannot tell two agents with the same connection file apart: locking a "
        "job is idempotent for the same identity, so any other agent using this file — a deployed one, or "
        "another `make agent` — gets the same locks and delivers the same jobs as this one, each with its own "
        "storage. Start it only if no other agent uses this identity, or give this agent an integration (a "
        f"connection file) of its own in Clearance. To start it anyway: add {SHARED_IDENTITY_FLAG} "
        f'(make agent SETTINGS=… ARGS="{SHARED_IDENTITY_FLAG}").'
    )


def configure_logging(level: str) -> None:
    """The agent's own lines at `level`; the SDKs' request/header logging stays off, whatever the level."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    for noisy in ("azure", "urllib3", "msal", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if level != "DEBUG":  # one line per function run (timers fire every few seconds) only when debugging
        logging.getLogger("devstack.funchost.invocation").setLevel(logging.WARNING)


def run(args: argparse.Namespace) -> int:
    try:
        values = {k: str(v) for k, v in json.loads(args.settings.read_text(encoding="utf-8"))["Values"].items()}
    except (OSError, ValueError, KeyError, AttributeError) as exc:
        print(f"error: cannot read the Values of {args.settings}: {type(exc).__name__}")
        return 2
    configure_logging("DEBUG" if args.verbose else args.log_level)
    azurite = None
    if values.get("AzureWebJobsStorage", "").strip().lower() in LOCAL_STORAGE:
        azurite = Azurite(DEFAULT_STATE_DIR / "azurite").start()
        values["AzureWebJobsStorage"] = azurite.connection_string
        print(f"Storage: local Azurite at {azurite.blob_endpoint} (data in {DEFAULT_STATE_DIR / 'azurite'})")
        if not values.get("CREDENTIALS_KEY_URI") and not values.get("CREDENTIALS_KEY_FILE"):
            DEFAULT_STATE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
            key_file = LocalKeyFileWrapper.create(DEFAULT_STATE_DIR / CREDENTIALS_KEY_FILE)
            values["CREDENTIALS_KEY_FILE"] = str(key_file)  # local storage, local key (never for an account)
        # `make ops` finds this Azurite (its ports change at every start) while the agent runs
        AGENT_STORAGE.parent.mkdir(parents=True, exist_ok=True)
        AGENT_STORAGE.write_text(
            json.dumps({"storage_connection_string": azurite.connection_string, "pid": os.getpid()}), encoding="utf-8"
        )
    try:
        settings = AgentSettings.from_env(values)  # fail fast, with every bad setting named
    except SettingsError as exc:
        print(f"error: {exc}")
        if azurite:
            AGENT_STORAGE.unlink(missing_ok=True)
            azurite.stop()
        return 2
    warning = shared_identity_warning(settings)
    if warning is not None and not args.allow_shared_identity:
        print(f"error: {warning}")
        if azurite:
            AGENT_STORAGE.unlink(missing_ok=True)
            azurite.stop()
        return 2
    if warning is not None:
        print(f"warning: {SHARED_IDENTITY_FLAG} given. {warning.split('. To start it anyway')[0]}.")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    host = FunctionHost(REPO_ROOT, values, instance_id="local-agent")
    try:
        host.start()
        print("Agent running (poll_jobs, process_job, renew_locks); Ctrl-C to stop.", flush=True)
        stop.wait()
    finally:
        host.stop()
        if azurite:
            AGENT_STORAGE.unlink(missing_ok=True)
            azurite.stop()
    return 0
