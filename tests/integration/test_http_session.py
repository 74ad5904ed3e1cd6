"""The agent's pooled sessions against a real TLS server (the Key Vault stand-in's self-signed
certificate): the CA bundle the environment names is what verifies the server, a server it does not vouch
for is refused, and the bundle's path is looked up on disk once rather than on every request."""

from __future__ import annotations

import os

import pytest
import requests

from devstack.keyvault_sim import KeyVaultStandIn
from shared.http import session as sessions


@pytest.fixture(scope="module")
def server():
    stand_in = KeyVaultStandIn().start()
    yield stand_in
    stand_in.stop()


def test_the_named_ca_bundle_verifies_the_server_and_is_looked_up_once(server, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", server.ca_file)
    sessions._ca_location.cache_clear()
    looked_up: list[str] = []
    real_isdir = os.path.isdir
    monkeypatch.setattr(os.path, "isdir", lambda path: looked_up.append(path) or real_isdir(path))

    session = sessions.pooled_session()
    statuses = [session.get(f"{server.base_url}/keys/nothing", timeout=10).status_code for _ in range(5)]

    assert statuses == [401] * 5  # TLS verified; the stand-in asks for a token
    assert looked_up.count(server.ca_file) == 1  # `requests` alone looks twice per request


def test_a_server_the_bundle_does_not_vouch_for_is_refused(server, monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)

    with pytest.raises(requests.exceptions.SSLError):
        sessions.pooled_session().get(f"{server.base_url}/keys/nothing", timeout=10)


def test_a_missing_ca_bundle_is_named_in_the_error(tmp_path, monkeypatch):
    missing = str(tmp_path / "no-such-bundle.pem")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", missing)

    with pytest.raises(OSError, match=r"no-such-bundle\.pem"):
        sessions.pooled_session().get("https://127.0.0.1:9/", timeout=1)
