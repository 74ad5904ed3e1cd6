"""The runtime lock: `requirements.txt` generated from `requirements.in` (`make lock`).

    python -m tools.lock            # regenerate requirements.txt (needs PyPI)
    python -m tools.lock --check    # regenerate into memory and fail if requirements.txt differs (needs PyPI)

`requirements.in` names the packages the agent imports, each pinned and justified. `requirements.txt` is
what every installation uses — `make setup` (`pip install --require-hashes`), `make package` and azd's
package (the file is copied as is) and Azure's remote build (pip, which checks hashes as soon as a file has
them) — and holds every runtime package, direct or transitive, pinned, with the hashes of all the files
PyPI has for that version. It is resolved by uv for Azure's platform, CPython 3.11 on Linux x86_64
(Flex Consumption), whatever machine runs the command, so the deployed app gets exactly what was tested.

The first lines record the SHA-256 of `requirements.in` it was generated from: the test suite compares it
offline (tests/infra/test_lock.py), so a change to `requirements.in` without `make lock` fails CI with
the command to run.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "requirements.in"
LOCK = ROOT / "requirements.txt"
PYTHON_VERSION = "3.11"  # infra/bicep's pythonVersion default: the Python the deployed app runs
PLATFORM = "x86_64-manylinux_2_28"  # Flex Consumption's Linux on x86_64
FINGERPRINT = "# requirements.in sha256: "
COMMAND = "make lock"


def source_fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def header(source_text: str) -> str:
    return (
        "# The runtime lock: every package Azure installs for the function app, pinned, with the hashes of\n"
        f"# every file of that version. Generated from requirements.in by `{COMMAND}` (tools/lock.py: uv pip\n"
        f"# compile --generate-hashes for CPython {PYTHON_VERSION} on {PLATFORM}). Do not edit by hand.\n"
        f"{FINGERPRINT}{source_fingerprint(source_text)}\n"
    )


def compile_lock() -> str:
    """requirements.txt's text for the current requirements.in (runs uv; reaches PyPI)."""
    compiled = subprocess.run(  # noqa: S603 - this interpreter running uv, with fixed arguments
        [
            sys.executable,
            "-m",
            "uv",
            "pip",
            "compile",
            str(SOURCE.relative_to(ROOT)),
            "--generate-hashes",
            "--no-header",
            "--python-version",
            PYTHON_VERSION,
            "--python-platform",
            PLATFORM,
            "--quiet",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if compiled.returncode != 0:
        raise SystemExit(f"uv pip compile failed:\n{compiled.stderr.strip()}")
    return header(SOURCE.read_text()) + compiled.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if requirements.txt is not what make lock writes")
    args = parser.parse_args()
    text = compile_lock()
    if args.check:
        if LOCK.read_text() != text:
            print(f"requirements.txt is stale: run `{COMMAND}` and commit it", file=sys.stderr)
            return 1
        print("requirements.txt is up to date")
        return 0
    LOCK.write_text(text)
    print(f"wrote {LOCK.relative_to(ROOT)}: {sum(1 for line in text.splitlines() if '==' in line)} packages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
