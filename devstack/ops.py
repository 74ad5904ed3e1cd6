"""`make ops` (`python -m devstack.ops`): the operator's tool (`python -m shared.ops`) on a development
machine, where the storage may also be the Azurite of a running `make agent` or `make stack`.

That discovery is the local stack's own knowledge, so it lives here and never in the deployed package:
this module finds the state files those commands write (relative to the current folder, as `make` runs
from the repository root) and hands what it finds to `shared.ops.main`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from shared.ops import main as ops_main
from shared.ops.access import LocalStorage, Storage

STACK_STATE = Path(".devstack/state.json")
"""Written by `make stack` while it runs (devstack/stack.py)."""
AGENT_STORAGE = Path(".devstack/agent-storage.json")
"""Written by `make agent` while it runs its own Azurite (devstack/real_agent.py)."""


def local_azurite() -> Storage | None:
    """The Azurite of a running `make agent`, else of a running `make stack` (the state files they write)."""
    for path, who in ((AGENT_STORAGE, "make agent"), (STACK_STATE, "make stack")):
        if not path.is_file():
            continue
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
            connection = str(state["storage_connection_string"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        pid = state.get("pid")
        if isinstance(pid, int) and not _alive(pid):
            continue
        return Storage(f"the local Azurite of `{who}` ({path})", connection_string=connection)
    return None


LOCAL = LocalStorage(
    find=local_azurite,
    start_hint="start the agent (make agent SETTINGS=…) or the local stack (make stack)",
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main(argv: list[str] | None = None) -> int:
    return ops_main(argv, local=LOCAL)


if __name__ == "__main__":
    sys.exit(main())
