"""RSA keys from JSON Web Keys (RFC 7517/7518) with the `cryptography` package; no JOSE library needed.

Error messages name the problem, never the key material.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

MIN_RSA_BITS = 2048
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi")


class JwkError(ValueError):
    """The JWK cannot be used; the message says why without quoting the key."""


def b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_member(jwk: Mapping[str, Any], name: str) -> int:
    value = jwk.get(name)
    if not isinstance(value, str) or not value:
        raise JwkError(f"JWK member '{name}' is missing or not a base64url string")
    try:
        return int.from_bytes(b64url_decode(value), "big")
    except (ValueError, TypeError):
        raise JwkError(f"JWK member '{name}' is not valid base64url") from None


def _check_rsa(jwk: Mapping[str, Any]) -> None:
    if not isinstance(jwk, Mapping):
        raise JwkError("the key is not a JSON object (JWK)")
    kty = jwk.get("kty")
    if kty != "RSA":
        raise JwkError(f"the key type is {kty!r}; an RSA key (kty 'RSA') is required")


def _check_size(bits: int) -> None:
    if bits < MIN_RSA_BITS:
        raise JwkError(f"the RSA key has {bits} bits; at least {MIN_RSA_BITS} are required")


def public_key_from_jwk(jwk: Mapping[str, Any]) -> rsa.RSAPublicKey:
    """The RSA public key of a JWK (public or private), refusing non-RSA keys and keys under 2048 bits."""
    _check_rsa(jwk)
    numbers = rsa.RSAPublicNumbers(_int_member(jwk, "e"), _int_member(jwk, "n"))
    _check_size(numbers.n.bit_length())
    try:
        return numbers.public_key()
    except ValueError:
        raise JwkError("the RSA public numbers are invalid") from None


def private_key_from_jwk(jwk: Mapping[str, Any]) -> rsa.RSAPrivateKey:
    """The RSA private key of a private JWK; refuses public-only keys, non-RSA keys and small keys."""
    _check_rsa(jwk)
    if "d" not in jwk:
        raise JwkError("the key is a public RSA key; a private key (with 'd', 'p', 'q', ...) is required")
    public = rsa.RSAPublicNumbers(_int_member(jwk, "e"), _int_member(jwk, "n"))
    _check_size(public.n.bit_length())
    d, p, q, dp, dq, qi = (_int_member(jwk, name) for name in _PRIVATE_MEMBERS)
    try:
        return rsa.RSAPrivateNumbers(p, q, d, dp, dq, qi, public).private_key()
    except ValueError:
        raise JwkError("the RSA private numbers are inconsistent (corrupted key)") from None


def public_jwk(key: rsa.RSAPublicKey, kid: str) -> dict[str, str]:
    numbers = key.public_numbers()
    return {
        "kty": "RSA",
        "kid": kid,
        "n": b64url_encode(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
        "e": b64url_encode(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
    }


def private_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, str]:
    """Serialise a private key as a JWK (used by tests and tooling that generate connection files)."""
    numbers = key.private_numbers()

    def enc(value: int) -> str:
        return b64url_encode(value.to_bytes((value.bit_length() + 7) // 8, "big"))

    return {
        **public_jwk(key.public_key(), kid),
        "d": enc(numbers.d),
        "p": enc(numbers.p),
        "q": enc(numbers.q),
        "dp": enc(numbers.dmp1),
        "dq": enc(numbers.dmq1),
        "qi": enc(numbers.iqmp),
    }
