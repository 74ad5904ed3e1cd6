"""The simulator's security token service and bearer-token checks (docs/protocol.md §2)."""

from __future__ import annotations

import time

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from devstack import LocalStack


def test_valid_assertion_gets_a_bearer_token_that_opens_the_agent_api(agent):
    response = agent.request_token()

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600 and body["access_token"]
    assert response.headers["Cache-Control"] == "no-store"
    assert agent.call("GET", "/agents/agent-a/jobs", token=body["access_token"]).status_code == 200


def test_rs256_assertion_is_accepted_too(agent):
    now = int(time.time())
    claims = {
        "iss": agent.client_id, "sub": agent.client_id, "aud": agent.token_url, "jti": "rs256-jti",
        "iat": now, "nbf": now, "exp": now + 60,
    }  # fmt: skip
    assertion = jwt.encode(claims, agent.key, algorithm="RS256", headers={"kid": agent.kid})
    assert agent.request_token(assertion).status_code == 200


def test_assertion_signed_with_another_key_is_invalid_grant(agent):
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    response = agent.request_token(agent.assertion(key=stranger))

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert "signature" in response.json()["error_description"].lower()


def test_assertion_for_another_audience_is_rejected(agent):
    response = agent.request_token(agent.assertion(aud=agent.token_url.replace("/connect/token", "/token")))

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert "aud" in response.json()["error_description"]


def test_expired_assertion_is_rejected(agent):
    past = int(time.time()) - 600
    response = agent.request_token(agent.assertion(iat=past, nbf=past, exp=past + 60))

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_assertion_living_longer_than_five_minutes_is_rejected(agent):
    now = int(time.time())
    response = agent.request_token(agent.assertion(exp=now + 301))

    assert response.status_code == 400
    assert "300" in response.json()["error_description"]


def test_assertion_without_jti_is_rejected(agent):
    response = agent.request_token(agent.assertion(jti=None))

    assert response.status_code == 400
    assert "jti" in response.json()["error_description"]


def test_assertion_with_wrong_kid_is_rejected(agent):
    response = agent.request_token(agent.assertion(headers={"kid": "not-the-key"}))

    assert response.status_code == 400
    assert "kid" in response.json()["error_description"]


def test_reused_assertion_jti_is_rejected(agent):
    assertion = agent.assertion()
    assert agent.request_token(assertion).status_code == 200

    replay = agent.request_token(assertion)

    assert replay.status_code == 400
    assert "already used" in replay.json()["error_description"]


def test_wrong_client_id_is_invalid_client(agent):
    response = agent.request_token(client_id=f"someone-else@{agent.cf['TenantId']}")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client"


def test_other_grant_type_is_unsupported(agent):
    response = agent.request_token(grant_type="client_credentials")

    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_json_token_request_is_refused(agent):
    body = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "client_id": agent.client_id}
    response = requests.post(agent.token_url, json=body, timeout=10)

    assert response.status_code == 400


def test_missing_bearer_gets_401_with_challenge(agent):
    response = requests.get(agent.base + "/agents/agent-a/jobs", timeout=10)

    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_unknown_token_gets_401_invalid_token(agent):
    response = agent.call("GET", "/agents/agent-a/jobs", token="made-up")

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert response.json()["status"] == 401


def test_access_token_expires_on_the_simulator_clock(agent, stack: LocalStack):
    token = agent.token
    stack.sim.advance_clock(3601)

    response = agent.call("GET", "/agents/agent-a/jobs", token=token)

    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert agent.request_token().status_code == 200  # assertions use real time, unaffected


def test_token_lifetime_is_configurable(agent, stack: LocalStack):
    stack.sim.configure(token_lifetime_seconds=120)

    assert agent.request_token().json()["expires_in"] == 120


def test_other_tenant_in_the_url_is_404(agent):
    response = requests.get(
        agent.base.replace(agent.cf["TenantId"], "00000000-0000-0000-0000-000000000000") + "/agents/agent-a/jobs",
        headers={"Authorization": f"Bearer {agent.token}"},
        timeout=10,
    )

    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/problem+json"


def test_connection_file_has_the_documented_shape(stack: LocalStack, connection_file):
    assert set(connection_file) == {
        "TenantId", "ServicePrincipalId", "ServicePrincipalKey",
        "SecurityTokenServiceBaseAddresses", "ApiBaseAddresses",
    }  # fmt: skip
    private_jwk_names = {"kty", "kid", "n", "e", "d", "p", "q", "dp", "dq", "qi"}
    assert set(connection_file["ServicePrincipalKey"]) == private_jwk_names
    assert not any("=" in value for value in connection_file["ServicePrincipalKey"].values())
    assert connection_file["ApiBaseAddresses"][0] + "/agentservice" == stack.agent_service_url
    assert connection_file["SecurityTokenServiceBaseAddresses"][0] == stack.sts_url
