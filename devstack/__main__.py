"""`python -m devstack`: the local stack (Azurite, the Clearance Registry simulator, the EEN, Rhombus and
Verkada simulators), the end-to-end demo, the resilience drill, and the agent against real services."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from . import demo, drill, real_agent
from .agent_env import agent_settings
from .azurite import AzuriteError
from .stack import DEFAULT_STATE_DIR, LocalStack, write_private


def cmd_up(args: argparse.Namespace) -> int:
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with LocalStack(
            args.state_dir,
            lock_duration_seconds=args.lock_duration,
            token_lifetime_seconds=args.token_lifetime,
            sas_ttl_seconds=args.sas_ttl,
            azurite_location=args.azurite_location,
            registry_port=args.port,
            verbose=args.verbose,
        ) as stack:
            print_endpoints(stack)
            write_agent_settings(stack)
            while not stop.wait(0.5):
                if not stack.azurite.running:
                    print("Azurite stopped unexpectedly:\n" + stack.azurite.log_tail(), file=sys.stderr)
                    return 1
            print("\nstopping the local stack...", flush=True)
    except AzuriteError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("stopped.")
    return 0


def print_endpoints(stack: LocalStack) -> None:
    state = stack.state()
    lines = [
        "Local stack is up (Ctrl-C to stop).",
        f"  Registry simulator   {state['registry_url']}",
        f"    agent service      {state['agent_service_url']}",
        f"    token endpoint     {state['token_url']}",
        f"    control API        {state['control_url']}   (try: GET /_sim/jobs)",
        f"    tenant             {state['tenant_id']}",
        f"  Azurite blob         {state['blob_endpoint']}",
        f"          queue        {state['queue_endpoint']}",
        f"          table        {state['table_endpoint']}",
        f"  upload container     {state['upload_container']}",
    ]
    # -- VMS simulators (EEN + Rhombus) ---------------------------------------------------------
    een, rhombus = state["een"], state["rhombus"]
    lines += [
        f"  EEN simulator        auth + api {een['api_url']}   (token: {een['token_url']})",
        f"    account API        {een['account_url']}",
        f"    client id          {een['client_id']}",
        f"    control API        {een['control_url']}   (try: GET /_sim/cameras)",
        f"  Rhombus simulator    api {rhombus['api_url']}   media {rhombus['media_url']}",
        f"    control API        {rhombus['control_url']}",
    ]
    # -- end VMS simulators ---------------------------------------------------------------------
    if stack.state_dir is not None:
        lines += [
            f"  state                {stack.state_dir / 'state.json'}",
            f"  connection file      {state['connection_file']}   (secret)",
            f"  file-encryption key  {state['registry_file_key']}   (secret)",
            f"  VMS credentials      {state['vms_credentials']}   (secret: EEN client + refresh token, Rhombus key)",
        ]
    print("\n".join(lines), flush=True)


LOCAL_SETTINGS = "local.settings.json"


def write_agent_settings(stack: LocalStack) -> None:
    """The agent's app settings for this stack (EEN simulator), ready for `make agent SETTINGS=...`."""
    if stack.state_dir is None:
        return
    path = stack.state_dir / LOCAL_SETTINGS
    values = agent_settings(stack, vms="een", POLL_SCHEDULE="*/5 * * * * *", RENEW_SCHEDULE="*/15 * * * * *")
    write_private(path, json.dumps({"IsEncrypted": False, "Values": values}, indent=2).encode())
    control = stack.state()["control_url"]
    print(
        f"\nAgent settings for this stack (secrets, mode 0600): {path}\n"
        f"  run the agent against it:  make agent SETTINGS={_shown(path)}\n"
        f"  post a job:                curl -X POST {control}/jobs -H 'Content-Type: application/json' "
        '-d \'{"Type": "thumbnail"}\'\n'
        "  The simulated EEN refresh token is single-use, like EEN's: the agent's first run rotates it and keeps\n"
        "  the new one in its token table. Restart the stack for a fresh one.",
        flush=True,
    )


def _shown(path: Path) -> Path:
    return path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devstack",
        description="The local stack: Azurite (storage), the Clearance Registry simulator, the EEN, Rhombus and "
        "Verkada VMS simulators, and local Functions hosts running the agent.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs and per-request access logs")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser(
        "up",
        help="run Azurite, the Registry simulator and the VMS simulators in the foreground (Ctrl-C stops them)",
        description="Runs Azurite, the Clearance Registry simulator and the EEN, Rhombus and Verkada simulators on "
        "free loopback ports until Ctrl-C; prints their endpoints and writes .devstack/ (state, the generated "
        "connection file, the simulators' secrets, and local.settings.json for `make agent`).",
    )
    up.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help=f"default: {DEFAULT_STATE_DIR}")
    up.add_argument("--lock-duration", type=int, default=300, metavar="S", help="job lock duration (300)")
    up.add_argument("--token-lifetime", type=int, default=3600, metavar="S", help="access token lifetime (3600)")
    up.add_argument("--sas-ttl", type=int, default=3600, metavar="S", help="upload SAS lifetime (3600)")
    up.add_argument("--port", type=int, default=0, help="Registry simulator port (default: a free one)")
    up.add_argument(
        "--azurite-location", type=Path, default=None, help="persist Azurite data in DIR (default: in memory)"
    )
    up.set_defaults(handler=cmd_up)

    demo_parser = commands.add_parser("demo", help="run the whole agent end to end on a fresh local stack")
    demo.add_arguments(demo_parser)
    demo_parser.set_defaults(handler=demo.run)

    drill_parser = commands.add_parser("drill", help="resilience drill: hosts killed at random while work is in flight")
    drill.add_arguments(drill_parser)
    drill_parser.set_defaults(handler=drill.run)

    agent_parser = commands.add_parser(
        "agent",
        help="run the agent (one local Functions host) with your settings: real Clearance and a real VMS, or "
        "the local stack's simulators",
        description="Runs poll_jobs, process_job and renew_locks in one local Functions host, exactly as deployed, "
        "with the app settings of --settings. Storage stays on a local Azurite unless the settings name an account.",
    )
    real_agent.add_arguments(agent_parser)
    agent_parser.set_defaults(handler=real_agent.run)

    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
