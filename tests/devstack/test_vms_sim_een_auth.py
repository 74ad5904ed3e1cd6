"""EEN simulator: OAuth with rotating refresh tokens, client credentials, base-URL discovery, bearer checks."""

from __future__ import annotations

import json

import requests

from tests.devstack.vms_conftest import API, EenClient

pytest_plugins = ["tests.devstack.vms_conftest"]


def test_refresh_returns_tokens_and_the_account_base_url(een):
    body = EenClient(een).refresh()

    assert set(body) == {"access_token", "expires_in", "refresh_token", "scope", "token_type", "httpsBaseUrl"}
    assert body["token_type"] == "Bearer" and body["scope"] == "vms.all"
    assert body["expires_in"] == 43200
    assert body["refresh_token"] != een.initial_refresh_token
    assert body["httpsBaseUrl"] == {"hostname": "127.0.0.1", "port": int(een.account_url.rsplit(":", 1)[1])}


def test_refresh_tokens_rotate_and_the_old_one_is_refused_at_once(een):
    client = EenClient(een)
    first = client.token_request().json()["refresh_token"]
    client.refresh_token = first

    second = client.token_request().json()["refresh_token"]
    reused = client.token_request(refresh_token=first)
    initial_again = client.token_request(refresh_token=een.initial_refresh_token)

    assert reused.status_code == 401 and reused.json()["error"] == "invalid_grant"
    assert initial_again.status_code == 401
    assert client.token_request(refresh_token=second).status_code == 200


def test_wrong_or_missing_client_credentials_are_invalid_client(een):
    client = EenClient(een)
    wrong = client.token_request(auth=(een.client_id, "not-the-secret"))
    missing = requests.post(
        een.auth_url + "/oauth2/token",
        data={"grant_type": "refresh_token", "scope": "vms.all", "refresh_token": een.initial_refresh_token},
        timeout=10,
    )

    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    assert missing.status_code == 401 and missing.json()["error"] == "invalid_client"
    assert client.token_request().status_code == 200  # a refused client does not use up the refresh token


def test_other_grant_types_are_refused(een):
    response = requests.post(
        een.auth_url + "/oauth2/token",
        auth=(een.client_id, een.client_secret),
        data={"grant_type": "client_credentials", "scope": "vms.all"},
        timeout=10,
    )

    assert response.status_code == 400 and response.json()["error"] == "unsupported_grant_type"


def test_client_settings_points_to_the_account_host_on_another_port(een):
    client = EenClient(een).login()

    assert client.base_url == een.account_url
    assert client.base_url != een.api_url
    assert client.get("/cameras").status_code == 200
    # the global host does not serve account routes: a client that skips discovery fails
    assert client.get(een.api_url + API + "/cameras").status_code == 404


def test_account_calls_need_a_valid_bearer_token(een_client):
    missing = requests.get(een_client.base_url + API + "/cameras", timeout=10)
    wrong = een_client.get("/cameras", headers={"Authorization": "Bearer nope"})

    for response in (missing, wrong):
        assert response.status_code == 401
        body = response.json()
        assert body["code"] == 401 and body["status"] == "unauthenticated"
        assert body["details"][0]["reason"] == "unauthenticated"


def test_access_tokens_expire_on_the_simulator_clock(een_client, een_sim):
    een_sim.configure(TokenLifetimeSeconds=600)
    een_client.refresh()
    assert een_client.refresh()["expires_in"] == 600

    een_sim.advance_clock(599)
    assert een_client.get("/cameras").status_code == 200
    een_sim.advance_clock(2)
    assert een_client.get("/cameras").status_code == 401

    een_client.refresh()
    assert een_client.get("/cameras").status_code == 200


def test_forced_expiry_gives_401_until_the_client_refreshes(een_client, een_sim):
    een_sim.expire_access_tokens()

    assert een_client.get("/cameras").status_code == 401
    een_client.refresh()
    assert een_client.get("/cameras").status_code == 200


def test_a_refresh_invalidates_the_previous_access_token(een, een_client):
    old_access = een_client.access_token
    other_instance = EenClient(een, refresh_token=een_client.refresh_token)
    other_instance.refresh()

    assert een_client.get("/cameras").status_code == 401
    assert een_client.token_request().status_code == 401  # its refresh token was rotated by the other instance
    assert other_instance.get(een.account_url + API + "/cameras").status_code == 200
    assert old_access != other_instance.access_token


def test_revoked_grant_needs_a_new_consent(een, een_client, een_sim):
    een_sim.revoke_grant()

    assert een_client.get("/cameras").status_code == 401
    assert een_client.token_request().status_code == 401

    fresh = een_sim.new_grant()
    assert EenClient(een, refresh_token=fresh).token_request().status_code == 200


def test_reset_restores_the_initial_consent(een, een_sim):
    EenClient(een).refresh()
    een_sim.reset()

    assert EenClient(een).token_request().status_code == 200


def test_request_log_counts_refreshes_and_401s_without_secrets(een, een_client, een_sim):
    een_client.get("/cameras", headers={"Authorization": "Bearer wrong"})
    een_client.refresh()
    een_client.token_request(refresh_token="stale")

    summary = een_sim.request_summary()
    log = json.dumps(een_sim.requests())

    assert summary["Refreshes"] == 2  # login + the explicit refresh
    assert summary["Unauthorized"] == 2  # the wrong bearer token + the stale refresh token
    assert summary["ByOperation"]["client_settings"] == 1
    for secret in (een.client_secret, een.initial_refresh_token, een_client.refresh_token, een_client.access_token):
        assert secret not in log
    assert een_sim.tokens()["Refreshes"] == 2
