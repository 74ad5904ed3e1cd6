"""The ops tool's parsing: Key Vault references, --since, --state, and options on either side of the command."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared import ops
from shared.ops.access import key_vault_reference
from shared.ops.errors import OpsError


def test_both_documented_key_vault_reference_forms_are_read():
    assert key_vault_reference("@Microsoft.KeyVault(SecretUri=https://kv1.vault.azure.net/secrets/conn/abc123)") == (
        "https://kv1.vault.azure.net",
        "conn",
        "abc123",
    )
    assert key_vault_reference("@Microsoft.KeyVault(VaultName=kv1;SecretName=conn)") == (
        "https://kv1.vault.azure.net",
        "conn",
        "",
    )
    assert key_vault_reference('{"ServicePrincipalId": "x"}') is None
    with pytest.raises(OpsError, match="SecretUri"):
        key_vault_reference("@Microsoft.KeyVault(SecretUri=ftp://elsewhere)")


def test_since_takes_durations_and_dates():
    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    assert ops._since("30m", now) == datetime(2026, 5, 1, 11, 30, tzinfo=UTC)
    assert ops._since("2h", now) == datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    assert ops._since("3d", now) == datetime(2026, 4, 28, 12, 0, tzinfo=UTC)
    assert ops._since("2026-04-30", now) == datetime(2026, 4, 30, tzinfo=UTC)
    with pytest.raises(OpsError, match="neither a duration"):
        ops._since("yesterday", now)


def test_states_are_matched_without_case_and_unknown_ones_refused():
    assert ops._states("queued, PROCESSING") == {"Queued", "Processing"}
    with pytest.raises(OpsError, match="unknown state Stuck"):
        ops._states("Stuck")


@pytest.mark.parametrize(
    "argv",
    [
        ["--settings", "a.json", "--table", "t", "status"],
        ["status", "--settings", "a.json", "--table", "t"],
        ["--settings", "a.json", "status", "--table", "t"],
    ],
)
def test_storage_options_go_before_or_after_the_command(argv):
    args = ops._parser().parse_args(argv)
    assert str(args.settings) == "a.json" and args.table == "t" and args.command == "status"


def test_the_apps_identity_settings_are_used_with_the_operators_sign_in():
    from shared.ops.access import choose_storage

    app_settings = {
        "AzureWebJobsStorage__credential": "managedidentity",
        "AzureWebJobsStorage__clientId": "11111111-2222-3333-4444-555555555555",
        "AzureWebJobsStorage__tableServiceUri": "https://st.table.core.windows.net",
        "AzureWebJobsStorage__queueServiceUri": "https://st.queue.core.windows.net",
    }
    storage = choose_storage(None, app_settings)
    assert storage.table_endpoint == "https://st.table.core.windows.net" and storage.connection_string is None
    assert "signed in as you" in storage.described and "not as the app's managed identity" in storage.described


def test_make_ops_needs_only_the_python_environment():
    from pathlib import Path

    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    target = next(line for line in makefile.splitlines() if line.startswith("ops:"))
    assert target.split(":", 1)[1].split() == ["$(PY_STAMP)"]  # not `setup`, which runs npm ci
