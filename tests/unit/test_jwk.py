"""JWK ↔ RSA key conversion, and refusal of keys Clearance must not use."""

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from shared.crypto.jwk import (
    JwkError,
    b64url_encode,
    private_jwk,
    private_key_from_jwk,
    public_jwk,
    public_key_from_jwk,
)


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_private_jwk_round_trips_to_the_same_key(key):
    jwk = private_jwk(key, "k1")
    assert private_key_from_jwk(jwk).private_numbers() == key.private_numbers()
    assert public_key_from_jwk(jwk).public_numbers() == key.public_key().public_numbers()


def test_public_jwk_uses_base64url_without_padding(key):
    jwk = public_jwk(key.public_key(), "k1")
    assert jwk["e"] == "AQAB"
    assert "=" not in jwk["n"] and "+" not in jwk["n"] and "/" not in jwk["n"]


def test_keys_under_2048_bits_are_refused():
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(JwkError, match="1024 bits; at least 2048"):
        public_key_from_jwk(public_jwk(small.public_key(), "small"))
    with pytest.raises(JwkError, match="at least 2048"):
        private_key_from_jwk(private_jwk(small, "small"))


def test_non_rsa_keys_are_refused():
    ec_key = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
    jwk = {"kty": "EC", "crv": "P-256", "x": b64url_encode(ec_key.x.to_bytes(32, "big")), "y": "AA"}
    with pytest.raises(JwkError, match="RSA key"):
        public_key_from_jwk(jwk)


def test_public_key_is_refused_where_a_private_key_is_needed(key):
    with pytest.raises(JwkError, match="public RSA key; a private key"):
        private_key_from_jwk(public_jwk(key.public_key(), "k"))


def test_errors_never_quote_key_material(key):
    jwk = private_jwk(key, "k1")
    jwk["q"] = jwk["p"]  # corrupted
    with pytest.raises(JwkError) as raised:
        private_key_from_jwk(jwk)
    assert jwk["p"][:16] not in str(raised.value)
    assert jwk["d"][:16] not in str(raised.value)


def test_missing_member_is_named():
    with pytest.raises(JwkError, match="'n'"):
        public_key_from_jwk({"kty": "RSA", "e": "AQAB"})
