"""App settings: one typed object, every problem named, no value ever echoed."""

import contextlib
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.crypto.jwk import private_jwk
from shared.settings import AgentSettings, SettingsError

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
CONNECTION_FILE = json.dumps(
    {
        "TenantId": "t",
        "ServicePrincipalId": "sp",
        "ServicePrincipalKey": private_jwk(KEY, "k"),
        "SecurityTokenServiceBaseAddresses": ["https://sts.test/connect"],
        "ApiBaseAddresses": ["https://api.test"],
    }
)


def valid_env(**changes: str | None) -> dict[str, str]:
    env: dict[str, str | None] = {
        "CLEARANCE_CONNECTION_FILE": CONNECTION_FILE,
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "VMS_KIND": "rhombus",
        "RHOMBUS_API_KEY": "very-secret-key",
    }
    env.update(changes)
    return {k: v for k, v in env.items() if v is not None}


def test_defaults_are_sensible_and_the_agent_id_defaults_to_the_service_principal():
    settings = AgentSettings.from_env(valid_env())
    assert settings.agent_id == "sp"
    assert settings.jobs_queue == "clearance-jobs" and settings.max_in_flight_jobs == 5
    assert settings.upload_allow_http_loopback is False
    assert "very-secret-key" not in repr(settings) and "PRIVATE" not in repr(settings)


def test_every_problem_is_listed_at_once_by_setting_name():
    env = valid_env(MAX_IN_FLIGHT_JOBS="lots", UPLOAD_ALLOW_HTTP_LOOPBACK="maybe", AzureWebJobsStorage="")
    with pytest.raises(SettingsError) as raised:
        AgentSettings.from_env(env)
    message = str(raised.value)
    for name in ("MAX_IN_FLIGHT_JOBS", "UPLOAD_ALLOW_HTTP_LOOPBACK", "AzureWebJobsStorage"):
        assert name in message


def test_an_unresolved_key_vault_reference_for_the_connection_file_is_named():
    env = valid_env(CLEARANCE_CONNECTION_FILE="@Microsoft.KeyVault(VaultName=kv;SecretName=clearance)")
    with pytest.raises(SettingsError, match="unresolved Key Vault reference"):
        AgentSettings.from_env(env)


def test_a_missing_connection_file_and_vms_kind_are_reported_together():
    with pytest.raises(SettingsError, match=r"CLEARANCE_CONNECTION_FILE.*VMS_KIND"):
        AgentSettings.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true"})


@pytest.mark.parametrize(
    "key",
    [
        "PRIVATE-KEY-MATERIAL-5f3a9",  # a string where the key object should be
        {**private_jwk(KEY, "k"), "kty": "EC"},  # the real private key, of the wrong type
    ],
    ids=["key-as-text", "key-of-wrong-type"],
)
def test_settings_holding_secrets_are_reported_by_name_and_never_echo_their_values(key):
    connection = json.dumps({**json.loads(CONNECTION_FILE), "ServicePrincipalKey": key})
    env = valid_env(
        CLEARANCE_CONNECTION_FILE=connection,
        VMS_KIND="een",
        RHOMBUS_API_KEY=None,
        EEN_CLIENT_ID="client-id",
        EEN_CLIENT_SECRET="een-client-secret-77",
        EEN_REFRESH_TOKEN="een-refresh-token-88",
        EEN_API_URL="api.example.com/without-a-scheme",  # a problem found after the secrets were read
    )

    with pytest.raises(SettingsError) as raised:
        AgentSettings.from_env(env)

    message = str(raised.value)
    assert "CLEARANCE_CONNECTION_FILE" in message and "ServicePrincipalKey" in message and "EEN_API_URL" in message
    private_parts = [key] if isinstance(key, str) else [key[name] for name in ("d", "p", "q", "dp", "dq", "qi")]
    for secret in [*private_parts, "een-client-secret-77", "een-refresh-token-88"]:
        assert secret[:16] not in message


def test_identity_based_storage_needs_both_service_uris():
    env = valid_env(
        AzureWebJobsStorage="", **{"AzureWebJobsStorage__queueServiceUri": "https://a.queue.core.windows.net"}
    )
    with pytest.raises(SettingsError, match="tableServiceUri"):
        AgentSettings.from_env(env)


def test_a_queue_name_too_long_for_its_poison_queue_is_refused():
    with pytest.raises(SettingsError, match="56 characters"):
        AgentSettings.from_env(valid_env(JOBS_QUEUE_NAME="q" * 57))


def test_the_catalogue_of_settings_is_exactly_what_the_code_reads():
    import re
    from pathlib import Path

    from shared.settings import SETTINGS_READ

    class Recording(dict):
        def __init__(self, values: dict[str, str]) -> None:
            super().__init__(values)
            self.asked: set[str] = set()

        def get(self, key, default=None):
            self.asked.add(key)
            return super().get(key, default)

        def __getitem__(self, key):
            self.asked.add(key)
            return super().__getitem__(key)

    read: set[str] = set()
    for kind in ("een", "rhombus", "verkada"):
        env = Recording(valid_env(VMS_KIND=kind))
        with contextlib.suppress(SettingsError):  # the vendors' credentials are not all set: read all the same
            AgentSettings.from_env(env)
        read |= env.asked
    root = Path(__file__).resolve().parents[2]
    schedules = set()
    for folder in ("poll_jobs", "renew_locks", "process_job"):
        schedules |= set(re.findall(r"%([A-Z_]+)%", (root / folder / "function.json").read_text()))
    assert set(SETTINGS_READ) == read and schedules <= read
    readers = {
        str(path.relative_to(root))
        for path in (root / "shared").rglob("*.py")
        if re.search(r"os\.environ|getenv", path.read_text())
    }
    assert readers == {"shared/config.py", "shared/ops/access.py"}  # ops: the operator's tool reads its own few


def test_verkada_needs_its_key_and_org_and_knows_its_regions():
    env = valid_env(
        VMS_KIND="verkada",
        RHOMBUS_API_KEY=None,
        VERKADA_API_KEY="vkd-secret",
        VERKADA_ORG_ID="org-1",
        CREDENTIALS_KEY_URI="https://kv-x.vault.azure.net/keys/credentials",
    )
    settings = AgentSettings.from_env(env)
    assert settings.vms.verkada_api_url == "https://api.verkada.com" and settings.vms.een_token_table == "vmstokens"
    assert "vkd-secret" not in repr(settings)
    eu = AgentSettings.from_env({**env, "VERKADA_REGION": "EU"})
    assert eu.vms.verkada_api_url == "https://api.eu.verkada.com"
    with pytest.raises(SettingsError, match="VERKADA_REGION must be one of us, eu, au, gov"):
        AgentSettings.from_env({**env, "VERKADA_REGION": "mars"})
    with pytest.raises(SettingsError, match="VMS_KIND=verkada needs VERKADA_ORG_ID"):
        AgentSettings.from_env({k: v for k, v in env.items() if k != "VERKADA_ORG_ID"})
    with pytest.raises(SettingsError, match="VERKADA_API_KEY holds an unresolved Key Vault reference"):
        AgentSettings.from_env({**env, "VERKADA_API_KEY": "@Microsoft.KeyVault(SecretUri=https://v/s)"})


def test_vendors_that_store_tokens_need_the_key_that_seals_them():
    base = valid_env(RHOMBUS_API_KEY=None, VERKADA_API_KEY="k", VERKADA_ORG_ID="o")
    base.update(EEN_CLIENT_ID="c", EEN_CLIENT_SECRET="s", EEN_REFRESH_TOKEN="r")
    for kind in ("een", "verkada"):
        with pytest.raises(SettingsError, match=f"VMS_KIND={kind} stores credentials sealed: set CREDENTIALS_KEY_URI"):
            AgentSettings.from_env({**base, "VMS_KIND": kind})
        local = AgentSettings.from_env({**base, "VMS_KIND": kind, "CREDENTIALS_KEY_FILE": "devstack-state/local.key"})
        assert local.vms.credentials_key_file == "devstack-state/local.key"
    with pytest.raises(SettingsError, match="CREDENTIALS_KEY_URI must be an absolute"):
        AgentSettings.from_env({**base, "VMS_KIND": "een", "CREDENTIALS_KEY_URI": "kv/keys/credentials"})
    assert AgentSettings.from_env(valid_env()).vms.kind == "rhombus"  # Rhombus stores nothing: no key needed


def test_a_five_field_cron_schedule_is_named_before_the_host_ever_runs_it():
    with pytest.raises(SettingsError) as raised:
        AgentSettings.from_env(valid_env(POLL_SCHEDULE="*/1 * * * *"))
    assert "POLL_SCHEDULE must be a 6-field NCRONTAB expression" in str(raised.value)
    assert AgentSettings.from_env(valid_env(POLL_SCHEDULE="0 */1 * * * *")).agent_id


def test_the_item_failure_limit_is_its_own_setting_apart_from_the_dequeue_count():
    settings = AgentSettings.from_env(valid_env(ITEM_FAILURE_LIMIT="2"))
    assert (settings.item_failure_limit, settings.max_dequeue_count) == (2, 5)
    with pytest.raises(SettingsError, match="ITEM_FAILURE_LIMIT"):
        AgentSettings.from_env(valid_env(ITEM_FAILURE_LIMIT="0"))


def test_the_engine_timing_is_validated_together_with_a_clear_error():
    from shared.agent.wiring.services import TimingError, check_timing

    check_timing(heartbeat_every=10, stale_after=45, sweep_after=600)  # the defaults
    with pytest.raises(TimingError, match=r"stale_after \(10 s\) must exceed heartbeat_every \(10 s\)"):
        check_timing(heartbeat_every=10, stale_after=10, sweep_after=600)
    with pytest.raises(TimingError, match=r"sweep_after \(300 s\) must exceed the longest backoff \(300 s\)"):
        check_timing(heartbeat_every=10, stale_after=45, sweep_after=300)
