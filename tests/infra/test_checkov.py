"""checkov's Bicep security scan of both networking variants: no file may fail to parse, and no failed check
outside the reviewed skips of that variant.

checkov evaluates neither parameters nor conditional expressions, so each variant is rendered before it is
scanned: in a copy of infra/bicep every `privateNetworking ? <private> : <public>` takes that variant's
branch (the storage and Key Vault modules switch their network settings on it; main.bicep passes
`vnetEnabled`). The private variant must pass the storage and Key Vault network checks the public variant
skips. checkov is large (~300 MB) and lives in its own venv, `.venv-infra` (requirements-infra.txt), which
`make test` creates. Without it this test fails: it never skips silently.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BICEP_DIR = ROOT / "infra" / "bicep"
CHECKOV = ROOT / ".venv-infra" / "bin" / "checkov"
SKIPS_FILE = ROOT / "infra" / "checkov-skips.txt"
VARIANTS = ("public", "private")
SKIP_LINE = re.compile(r"^(CKV2?_AZURE_\d+)(?:\s+\[(public|private)\])?\s+#\s*(\S.{9,})$")
SWITCH = re.compile(r"privateNetworking \? ('[^']*') : ('[^']*')")
# The network checks that only the public variant may skip (its storage and vault keep public endpoints).
NETWORK_CHECKS = {"CKV_AZURE_35", "CKV_AZURE_59", "CKV_AZURE_109", "CKV_AZURE_189"}


def reviewed_skips(variant: str) -> dict[str, str]:
    """check id → reason, for the entries that apply to `variant` (untagged entries apply to both)."""
    skips: dict[str, str] = {}
    seen: set[str] = set()
    for line in SKIPS_FILE.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = SKIP_LINE.match(line.strip())
        assert match, f"{SKIPS_FILE.name}: every entry is 'CHECK_ID [variant]  # reason': {line!r}"
        check, only, reason = match.groups()
        assert check not in seen, f"{check} is listed twice"
        seen.add(check)
        if only in (None, variant):
            skips[check] = reason
    return skips


def render(variant: str, target: Path) -> Path:
    """A copy of infra/bicep with every networking switch resolved to `variant`'s branch."""
    shutil.copytree(BICEP_DIR, target)
    resolved = 0
    for path in target.rglob("*.bicep"):
        text = path.read_text()
        text, count = SWITCH.subn(lambda m: m[1] if variant == "private" else m[2], text)
        resolved += count
        assert "privateNetworking ?" not in text, f"{path.name}: a networking switch the renderer cannot resolve"
        path.write_text(text)
    assert resolved >= 4, "the storage and Key Vault modules no longer switch on privateNetworking"
    return target


def test_skip_list_entries_each_have_a_reason():
    for variant in VARIANTS:
        skips = reviewed_skips(variant)
        assert skips
        assert all(len(reason.split()) >= 4 for reason in skips.values())


def test_the_private_variant_needs_no_network_skip():
    assert set(reviewed_skips("public")) >= NETWORK_CHECKS
    assert not NETWORK_CHECKS & set(reviewed_skips("private"))


def test_rendering_takes_the_variants_branch(tmp_path):
    public = render("public", tmp_path / "public")
    private = render("private", tmp_path / "private")
    assert "publicNetworkAccess: 'Enabled'" in (public / "modules" / "storage.bicep").read_text()
    assert "publicNetworkAccess: 'Disabled'" in (private / "modules" / "storage.bicep").read_text()
    assert "defaultAction: 'Deny'" in (private / "modules" / "keyvault.bicep").read_text()


@pytest.fixture(scope="module", params=VARIANTS)
def scan(request, tmp_path_factory) -> tuple[str, dict]:
    if not CHECKOV.exists():
        pytest.fail(
            f"checkov is not installed at {CHECKOV.relative_to(ROOT)}: run `make test` (it creates .venv-infra), "
            "or `python3 -m venv .venv-infra && .venv-infra/bin/pip install -r requirements-infra.txt`"
        )
    variant = request.param
    tree = render(variant, tmp_path_factory.mktemp("checkov") / variant)
    result = subprocess.run(
        [str(CHECKOV), "--framework", "bicep", "--skip-download", "-d", str(tree), "-o", "json"],
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
    return variant, reports[0]


def test_checkov_parses_every_bicep_file(scan):
    _, report = scan
    assert report["summary"]["parsing_errors"] == 0, report["results"].get("parsing_errors")
    checked = report["results"]["passed_checks"] + report["results"]["failed_checks"]
    scanned = {c["file_path"].lstrip("/") for c in checked}
    # The resources checkov knows checks for: storage, vault, secrets, plan, site, network.
    expected = {"modules/storage.bicep", "modules/keyvault.bicep", "modules/app.bicep", "modules/network.bicep"}
    assert expected <= scanned, scanned
    assert report["summary"]["resource_count"] >= 20


def test_checkov_reports_no_failed_check_outside_the_reviewed_skips(scan):
    variant, report = scan
    skips = reviewed_skips(variant)
    failed = {(c["check_id"], c["file_path"], c["resource"]) for c in report["results"]["failed_checks"]}
    unexpected = sorted(f for f in failed if f[0] not in skips)
    assert not unexpected, f"new checkov findings, {variant} variant (fix them, or add a reviewed skip): {unexpected}"
    stale = sorted(set(skips) - {f[0] for f in failed})
    assert not stale, f"skips that no longer fail in the {variant} variant (remove or tag them): {stale}"


def test_the_private_variant_passes_the_storage_and_vault_network_checks(scan):
    variant, report = scan
    passed = {c["check_id"] for c in report["results"]["passed_checks"]}
    if variant == "private":
        assert passed >= NETWORK_CHECKS, NETWORK_CHECKS - passed
    else:
        assert not NETWORK_CHECKS & passed
