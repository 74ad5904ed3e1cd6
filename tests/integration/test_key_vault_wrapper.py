"""The credentials key in Key Vault, through the real `azure-keyvault-keys` client against a local HTTPS
stand-in of the vault (devstack/keyvault_sim.py): wrap and unwrap, throttling retried, a refused identity
named; and a job whose vault is down or forbidden is released, never canceled, then done once it is back."""

from __future__ import annotations

import time
import uuid

import pytest
from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.data.tables import TableServiceClient

from devstack.keyvault_sim import KeyVaultStandIn
from shared.failures import Disposition, disposition_of
from shared.secrets.keyring import DataKeyRing, KeyVaultKeyWrapper, credentials_sealer
from shared.secrets.sealing import KeyAccessDenied, KeyUnavailable, Sealer
from shared.vms.settings import build_adapter
from tests.integration.agent_helpers import drain, end_pause, poll_once, quick_agent, recorded_camera


class ManagedIdentityStandIn:
    """A token credential (the app's managed identity in Azure); the stand-in vault accepts any bearer."""

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        return AccessToken("identity-token", int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: object = None) -> AccessTokenInfo:
        return AccessTokenInfo("identity-token", int(time.time()) + 3600)


@pytest.fixture(scope="module")
def vault():
    stand_in = KeyVaultStandIn().start()
    yield stand_in
    stand_in.stop()


@pytest.fixture
def wrapper(vault, monkeypatch) -> KeyVaultKeyWrapper:
    vault.clear_faults()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", vault.ca_file)  # trust the stand-in's self-signed certificate
    # The stand-in answers on 127.0.0.1, which is not a vault.azure.net name the client would check.
    return KeyVaultKeyWrapper(vault.key_uri, ManagedIdentityStandIn(), verify_challenge_resource=False)


@pytest.fixture
def table(stack):
    service = TableServiceClient.from_connection_string(stack.storage_connection_string)
    return service.get_table_client(f"creds{uuid.uuid4().hex[:12]}")


def test_data_keys_are_wrapped_by_the_vault_key_version_and_unwrapped_by_it(vault, wrapper, table):
    sealed = credentials_sealer(table, wrapper).seal("een-refresh-token", "vmstokens/een/c/RefreshToken")
    row = next(r for r in table.query_entities("PartitionKey eq 'keyring'") if r["RowKey"].startswith("dk-"))
    assert row["WrapAlgorithm"] == "RSA-OAEP-256" and row["WrapKeyId"] == f"{vault.key_uri}/{vault.version}"
    other_instance = credentials_sealer(table, wrapper)
    assert other_instance.open(sealed, "vmstokens/een/c/RefreshToken") == "een-refresh-token"
    assert ("POST", f"/keys/{vault.key_name}/{vault.version}/unwrapkey", 200) in vault.requests


@pytest.mark.parametrize("status", [429, 503])
def test_a_throttled_or_failing_vault_is_retried(vault, wrapper, table, status):
    vault.fail(status, 5)  # more than the client's own one quick retry of each call absorbs
    waits: list[float] = []
    key_id, _ = DataKeyRing(table, wrapper, sleep=waits.append).current()
    assert key_id and len(waits) >= 1  # our backoff ran, then the key was wrapped


def test_a_vault_down_for_good_is_retry_later_and_a_refused_identity_is_misconfigured(vault, wrapper, table):
    vault.fail(503, 100)
    with pytest.raises(KeyUnavailable) as down:
        DataKeyRing(table, wrapper, attempts=2, sleep=lambda _: None).current()
    assert disposition_of(down.value) is Disposition.RETRY_LATER
    vault.clear_faults()
    vault.fail(403, 100)
    with pytest.raises(KeyAccessDenied, match="Key Vault Crypto Service Encryption User") as refused:
        Sealer(DataKeyRing(table, wrapper, sleep=lambda _: None), "vms credential").seal("x", "ctx")
    assert disposition_of(refused.value) is Disposition.MISCONFIGURED
    assert "identity-token" not in str(refused.value)


@pytest.mark.parametrize("status", [403, 503])
def test_a_job_whose_vault_refuses_or_fails_is_released_not_canceled_then_done(stack, vault, wrapper, status):
    een = stack.een.control
    een.reset()
    agent = quick_agent(stack, vms="een", CREDENTIALS_KEY_URI=vault.key_uri)
    # the first failure is the last attempt: what the job ends as
    agent.services.max_tries = agent.services.item_failure_limit = 1
    agent.services.vms = build_adapter(
        agent.settings.vms,
        token_table=TableServiceClient.from_connection_string(stack.storage_connection_string).get_table_client(
            agent.settings.vms.een_token_table
        ),
        key_wrapper=wrapper,
    )
    camera, *_ = recorded_camera(een)
    job = stack.sim.create_job("thumbnail", {"CameraIds": [camera]})["Id"]
    vault.fail(status, 1000)
    poll_once(agent)
    drain(agent)
    detail = stack.sim.job(job)
    assert detail["State"] == "Available" and not detail.get("CancelReason")  # released: offered again
    record = agent.services.records.get(job)
    assert record is not None and record.state == "Released"
    assert een.tokens()["Refreshes"] == 0  # no token was fetched that could not be stored sealed
    vault.clear_faults()
    if status == 403:  # a refused identity is the agent's own configuration: it paused instead of looping
        assert agent.services.pause.current() is not None
        end_pause(agent)  # the pause is over: the next poll probes the VMS (the vault works again) and resumes
    poll_once(agent)
    drain(agent)
    assert stack.sim.job(job)["State"] == "Completed"
