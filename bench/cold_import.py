"""What a cold start costs in imports: run in a fresh interpreter, as a new Flex instance's worker is.

    python -m bench.cold_import een|rhombus|verkada|baseline

Imports the three function folders (what the Python worker loads at start) and builds the agent from its
settings, as the first invocation does; prints one JSON line: `seconds`, whether PyAV (`av`) got imported,
and how many modules were. `baseline` imports only `azure.functions`, which every function app pays for.
Nothing reaches the network: storage clients are built, not called. The Clearance connection file comes
from the caller in CLEARANCE_CONNECTION_FILE (generating an RSA key here would import, and time, the
crypto library before the agent does).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time

VENDOR_SETTINGS = {
    "een": {
        "EEN_CLIENT_ID": "bench-client",
        "EEN_CLIENT_SECRET": "bench-secret",
        "EEN_REFRESH_TOKEN": "bench-refresh-token",
    },
    "rhombus": {"RHOMBUS_API_KEY": "bench-key"},
    "verkada": {"VERKADA_API_KEY": "bench-key", "VERKADA_ORG_ID": "bench-org"},
}
COMMON_SETTINGS = {
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    "POLL_SCHEDULE": "0 */1 * * * *",
    "RENEW_SCHEDULE": "30 */1 * * * *",
    # as deployed: stored credentials are sealed under a Key Vault key (nothing is asked of the vault at start)
    "CREDENTIALS_KEY_URI": "https://bench-vault.vault.azure.net/keys/vms-credentials-kek",
}
FUNCTION_MODULES = ("poll_jobs", "process_job", "renew_locks")


def main(vendor: str) -> dict[str, object]:
    if vendor != "baseline":
        if "CLEARANCE_CONNECTION_FILE" not in os.environ:
            raise SystemExit("set CLEARANCE_CONNECTION_FILE (a connection file's JSON) first")
        os.environ.update(COMMON_SETTINGS | VENDOR_SETTINGS[vendor] | {"VMS_KIND": vendor})
    started = time.perf_counter()
    if vendor == "baseline":
        importlib.import_module("azure.functions")
    else:
        for name in FUNCTION_MODULES:
            importlib.import_module(name)
        runtime = importlib.import_module("shared.agent.wiring.runtime")
        runtime.agent()
    seconds = time.perf_counter() - started
    return {"vendor": vendor, "seconds": seconds, "av_imported": "av" in sys.modules, "modules": len(sys.modules)}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1] if len(sys.argv) > 1 else "baseline")))
