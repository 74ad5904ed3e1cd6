"""`python -m devstack.funchost run`: one host in the foreground until SIGINT/SIGTERM.

On a signal it stops taking new work, waits (bounded by --shutdown-timeout) for running
invocations, releases its leases and exits: 0 when everything finished, 1 when some run was
abandoned, 2 when the app cannot be loaded.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from .errors import FuncHostError
from .host import REPO_ROOT, FunctionHost

LOG_FORMAT = "%(asctime)s %(levelname)s [%(threadName)s] %(name)s: %(message)s"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devstack.funchost", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a function app against the storage account of its settings")
    run.add_argument("--app-dir", type=Path, default=REPO_ROOT, help="function app root (default: the repo root)")
    run.add_argument(
        "--settings", type=Path,
        help="a local.settings.json-shaped file whose Values are app settings (default: <app-dir>/local.settings.json "
        "if it exists); the environment provides the rest",
    )  # fmt: skip
    run.add_argument("--instance-id", help="this instance's name in logs and lock blobs")
    run.add_argument("--host-id", help="shared by scaled-out instances (default: from the app directory's name)")
    run.add_argument("--max-polling-interval", type=float, metavar="S", help="override host.json maxPollingInterval")
    run.add_argument(
        "--message-visibility", type=int, default=600, metavar="S",
        help="how long a received message stays invisible, renewed at half (default 600, as the real host)",
    )  # fmt: skip
    run.add_argument("--lease-duration", type=int, default=15, metavar="S", help="timer singleton lease (15-60 s)")
    run.add_argument("--lease-retry-interval", type=float, default=5.0, metavar="S", help="retry a held timer lease")
    run.add_argument("--shutdown-timeout", type=float, default=30.0, metavar="S", help="wait for runs on shutdown")
    run.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser.parse_args(argv)


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format=LOG_FORMAT, stream=sys.stderr, force=True)
    logging.getLogger("azure").setLevel(logging.WARNING)  # the SDK logs every request at INFO


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.log_level)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, request_stop)
    settings_file = args.settings
    if settings_file is None and (args.app_dir / "local.settings.json").is_file():
        settings_file = args.app_dir / "local.settings.json"
    try:
        host = FunctionHost(
            args.app_dir,
            settings_file=settings_file,
            instance_id=args.instance_id,
            host_id=args.host_id,
            max_polling_interval=args.max_polling_interval,
            message_visibility=args.message_visibility,
            lease_duration=args.lease_duration,
            lease_retry_interval=args.lease_retry_interval,
            shutdown_timeout=args.shutdown_timeout,
        ).start()
    except FuncHostError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    while not stop.wait(1.0):
        pass
    return 0 if host.stop() else 1


if __name__ == "__main__":
    sys.exit(main())
