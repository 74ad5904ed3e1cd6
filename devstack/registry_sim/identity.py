"""The simulator's identities: the agent's service principal (with its connection file) and the
Registry's own file-encryption key, both RSA-2048, serialised as JWKs (base64url, no padding)."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def generate_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwk_thumbprint(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> str:
    """RFC 7638 thumbprint, used as a realistic, stable kid."""
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    numbers = public.public_numbers()
    canonical = json.dumps(
        {"e": b64url_uint(numbers.e), "kty": "RSA", "n": b64url_uint(numbers.n)}, separators=(",", ":")
    )
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def public_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, str]:
    numbers = key.public_key().public_numbers()
    return {"kty": "RSA", "kid": kid, "n": b64url_uint(numbers.n), "e": b64url_uint(numbers.e)}


def private_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, str]:
    numbers = key.private_numbers()
    return {
        **public_jwk(key, kid),
        "d": b64url_uint(numbers.d),
        "p": b64url_uint(numbers.p),
        "q": b64url_uint(numbers.q),
        "dp": b64url_uint(numbers.dmp1),
        "dq": b64url_uint(numbers.dmq1),
        "qi": b64url_uint(numbers.iqmp),
    }


@dataclass(frozen=True)
class KeyPair:
    key: rsa.RSAPrivateKey
    kid: str

    @classmethod
    def generate(cls) -> KeyPair:
        key = generate_rsa_key()
        return cls(key, jwk_thumbprint(key))

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self.key.public_key()

    def private_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


@dataclass(frozen=True)
class SimulatorIdentity:
    """Who the agent is (tenant + service principal) and the Registry's file-encryption key."""

    tenant_id: str
    principal_id: str
    principal: KeyPair
    file_key: KeyPair

    @classmethod
    def generate(
        cls,
        *,
        tenant_id: str | None = None,
        principal_id: str | None = None,
        principal: KeyPair | None = None,
        file_key: KeyPair | None = None,
    ) -> SimulatorIdentity:
        return cls(
            tenant_id=tenant_id or str(uuid.uuid4()),
            principal_id=principal_id or str(uuid.uuid4()),
            principal=principal or KeyPair.generate(),
            file_key=file_key or KeyPair.generate(),
        )

    @property
    def client_id(self) -> str:
        return f"{self.principal_id}@{self.tenant_id}"

    def file_key_jwk(self) -> dict[str, str]:
        """The public JsonWebKey of every upload ticket."""
        return {**public_jwk(self.file_key.key, self.file_key.kid), "alg": "RSA-OAEP", "use": "enc"}

    def connection_file(self, base_url: str) -> dict[str, object]:
        """The Clearance JSON connection file for this principal (a secret: it holds the private key)."""
        return {
            "TenantId": self.tenant_id,
            "ServicePrincipalId": self.principal_id,
            "ServicePrincipalKey": private_jwk(self.principal.key, self.principal.kid),
            "SecurityTokenServiceBaseAddresses": [f"{base_url}/connect"],
            "ApiBaseAddresses": [base_url],
        }
