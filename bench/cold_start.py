"""`cold_import_seconds` per vendor: a new instance's imports and agent build, each in a fresh interpreter,
beside the baseline every function app pays (`azure.functions` alone), measured in the same run.

    python -m bench.cold_start [--runs N]      # these figures alone (make bench measures them too)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from shared.crypto.jwk import private_jwk

REPO = Path(__file__).resolve().parent.parent
VENDORS = ("een", "rhombus", "verkada")


def _connection_file() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return json.dumps(
        {
            "TenantId": "bench",
            "ServicePrincipalId": "bench-agent",
            "ServicePrincipalKey": private_jwk(key, "bench"),
            "SecurityTokenServiceBaseAddresses": ["https://sts.bench.invalid/connect"],
            "ApiBaseAddresses": ["https://api.bench.invalid"],
        }
    )


def probe(vendor: str, connection_file: str) -> dict[str, object]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("EEN_", "RHOMBUS_", "VERKADA_", "VMS_"))}
    environ["CLEARANCE_CONNECTION_FILE"] = connection_file
    output = subprocess.run(
        [sys.executable, "-m", "bench.cold_import", vendor],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    result: dict[str, object] = json.loads(output.strip().splitlines()[-1])
    return result


def measure(runs: int) -> dict[str, tuple[float, str]]:
    """Median over `runs` fresh interpreters each, interleaved so drift on a shared machine hits all alike."""
    connection_file = _connection_file()
    probe("baseline", connection_file)  # warm the OS file cache once, for every case alike
    for vendor in VENDORS:
        probe(vendor, connection_file)
    seconds: dict[str, list[float]] = {name: [] for name in ("baseline", *VENDORS)}
    av_loaded: dict[str, bool] = {}
    for _ in range(runs):
        for name in seconds:
            result = probe(name, connection_file)
            seconds[name].append(float(str(result["seconds"])))
            av_loaded[name] = bool(result["av_imported"])
    results = {f"cold_import_seconds_{name}": (statistics.median(values), "s") for name, values in seconds.items()}
    results["cold_import_av_loaded_een_rhombus"] = (float(av_loaded["een"] or av_loaded["rhombus"]), "bool")
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    results = measure(parser.parse_args().runs)
    for name, (value, unit) in results.items():
        print(f"{name:<40}{value:>8.3f}  {unit}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
