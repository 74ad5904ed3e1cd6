"""The Clearance connection file: clear, specific errors, and never its contents in a message."""

import json

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.crypto.jwk import private_jwk, public_jwk
from shared.registry.connection_file import ConnectionFileError, load_connection_file, parse_connection_file


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def document(key) -> dict:
    return {
        "TenantId": "tenant-1",
        "ServicePrincipalId": "sp-1",
        "ServicePrincipalKey": private_jwk(key, "kid-1"),
        "SecurityTokenServiceBaseAddresses": ["https://sts.example.test/connect/"],
        "ApiBaseAddresses": ["https://api.example.test"],
        "SomethingNew": {"ignored": True},
    }


def assert_no_secret_in(message: str, document: dict) -> None:
    for member in ("d", "p", "q", "dp", "dq", "qi"):
        value = document["ServicePrincipalKey"][member] if isinstance(document["ServicePrincipalKey"], dict) else ""
        assert not value or value[:12] not in message


def test_a_valid_file_gives_the_addresses_the_agent_needs(document):
    connection = parse_connection_file(json.dumps(document))
    assert connection.client_id == "sp-1@tenant-1"
    assert connection.token_endpoint == "https://sts.example.test/connect/token"
    assert connection.default_agent_service_url == "https://api.example.test/agentservice"
    assert connection.key_id == "kid-1"
    assert connection.signing_key.key_size == 2048


def test_camel_case_names_and_an_embedded_json_key_are_accepted(document):
    camel = {name[0].lower() + name[1:]: value for name, value in document.items()}
    camel["servicePrincipalKey"] = json.dumps(document["ServicePrincipalKey"])
    assert parse_connection_file(json.dumps(camel)).tenant_id == "tenant-1"


def test_repr_and_str_do_not_show_the_key(document):
    connection = parse_connection_file(json.dumps(document))
    assert_no_secret_in(repr(connection), document)
    assert_no_secret_in(str(connection), document)
    assert "ServicePrincipalKey" not in repr(connection) and "service_principal_key" not in repr(connection)


@pytest.mark.parametrize("missing", ["TenantId", "ServicePrincipalKey", "SecurityTokenServiceBaseAddresses"])
def test_a_missing_field_is_named(document, missing):
    del document[missing]
    with pytest.raises(ConnectionFileError, match=missing):
        parse_connection_file(json.dumps(document))


def test_a_public_key_is_refused(document, key):
    document["ServicePrincipalKey"] = public_jwk(key.public_key(), "kid-1")
    with pytest.raises(ConnectionFileError, match="private key"):
        parse_connection_file(json.dumps(document))


def test_a_non_rsa_key_is_refused(document):
    document["ServicePrincipalKey"] = {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "d": "AA"}
    with pytest.raises(ConnectionFileError, match="RSA"):
        parse_connection_file(json.dumps(document))


def test_a_key_under_2048_bits_is_refused(document):
    document["ServicePrincipalKey"] = private_jwk(rsa.generate_private_key(public_exponent=65537, key_size=1024), "k")
    with pytest.raises(ConnectionFileError, match="1024 bits") as raised:
        parse_connection_file(json.dumps(document))
    assert_no_secret_in(str(raised.value), document)


def test_an_unparsable_file_says_where_without_quoting_it(document):
    text = json.dumps(document)[:-5]
    with pytest.raises(ConnectionFileError, match="not valid JSON") as raised:
        parse_connection_file(text)
    assert_no_secret_in(str(raised.value), document)
    assert "tenant-1" not in str(raised.value)


def test_an_unresolved_key_vault_reference_is_recognised():
    reference = "@Microsoft.KeyVault(VaultName=kv-agent;SecretName=clearance-connection)"
    with pytest.raises(ConnectionFileError, match=r"unresolved Key Vault reference.*Key Vault Secrets User"):
        parse_connection_file(reference)


def test_wrong_types_are_reported_without_values(document):
    document["ApiBaseAddresses"] = "not-a-list-secretvalue"
    with pytest.raises(ConnectionFileError, match="ApiBaseAddresses") as raised:
        parse_connection_file(json.dumps(document))
    assert "secretvalue" not in str(raised.value)


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConnectionFileError, match="cannot read"):
        load_connection_file(tmp_path / "nope.json")


def test_a_file_with_a_byte_order_mark_loads(tmp_path, document):
    path = tmp_path / "conn.json"
    path.write_text(json.dumps(document), encoding="utf-8-sig")
    assert load_connection_file(path).service_principal_id == "sp-1"
