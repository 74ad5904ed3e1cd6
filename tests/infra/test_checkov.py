"""checkov's Bicep security scan: no file may fail to parse, and no failed check outside the reviewed skips.

checkov is large (~300 MB) and lives in its own venv, `.venv-infra` (requirements-infra.txt), which
`make test` creates. Without it this test fails: it never skips silently.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECKOV = ROOT / ".venv-infra" / "bin" / "checkov"
SKIPS_FILE = ROOT / "infra" / "checkov-skips.txt"
SKIP_LINE = re.compile(r"^(CKV2?_AZURE_\d+)\s+#\s*(\S.{9,})$")


def reviewed_skips() -> dict[str, str]:
    skips: dict[str, str] = {}
    for line in SKIPS_FILE.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = SKIP_LINE.match(line.strip())
        assert match, f"{SKIPS_FILE.name}: every entry is 'CHECK_ID  # reason': {line!r}"
        assert match[1] not in skips, f"{match[1]} is listed twice"
        skips[match[1]] = match[2]
    return skips


def test_skip_list_entries_each_have_a_reason():
    skips = reviewed_skips()
    assert skips
    assert all(len(reason.split()) >= 4 for reason in skips.values())


@pytest.fixture(scope="module")
def scan() -> dict:
    if not CHECKOV.exists():
        pytest.fail(
            f"checkov is not installed at {CHECKOV.relative_to(ROOT)}: run `make test` (it creates .venv-infra), "
            "or `python3 -m venv .venv-infra && .venv-infra/bin/pip install -r requirements-infra.txt`"
        )
    result = subprocess.run(
        [str(CHECKOV), "--framework", "bicep", "--skip-download", "-d", "infra/bicep", "-o", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    # checkov exits 1 when a check fails and 0 when files fail to parse: judge by the report, not the code.
    assert result.returncode in (0, 1), result.stderr[-2000:]
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    assert [r["check_type"] for r in reports] == ["bicep"], "checkov scanned no Bicep"
    return reports[0]


def test_checkov_parses_every_bicep_file(scan):
    assert scan["summary"]["parsing_errors"] == 0, scan["results"].get("parsing_errors")
    scanned = {c["file_path"].lstrip("/") for c in scan["results"]["passed_checks"] + scan["results"]["failed_checks"]}
    # The resources checkov knows checks for: storage, vault, secrets, plan, site.
    assert {"modules/storage.bicep", "modules/keyvault.bicep", "modules/app.bicep"} <= scanned, scanned
    assert scan["summary"]["resource_count"] >= 20


def test_checkov_reports_no_failed_check_outside_the_reviewed_skips(scan):
    skips = reviewed_skips()
    failed = {(c["check_id"], c["file_path"], c["resource"]) for c in scan["results"]["failed_checks"]}
    unexpected = sorted(f for f in failed if f[0] not in skips)
    assert not unexpected, f"new checkov findings (fix them, or add a reviewed skip with a reason): {unexpected}"
    stale = sorted(set(skips) - {f[0] for f in failed})
    assert not stale, f"skips that no longer fail (remove them from {SKIPS_FILE.name}): {stale}"
