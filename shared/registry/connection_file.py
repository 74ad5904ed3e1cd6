"""The Clearance JSON connection file (integration file), parsed and checked once at start-up.

The file is a secret (it holds the service principal's private key): no error message, log line or
repr ever includes its contents.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import Field, ValidationError, field_validator

from shared.config import KEY_VAULT_HELP, is_key_vault_reference
from shared.crypto.jwk import JwkError, private_key_from_jwk
from shared.registry import contract
from shared.wire import CaseInsensitiveModel, describe_validation_error


class ConnectionFileError(ValueError):
    """The connection file cannot be used; the message says which part is wrong, never its value."""


class ConnectionFile(CaseInsensitiveModel):
    tenant_id: str = Field(alias="TenantId", min_length=1)
    service_principal_id: str = Field(alias="ServicePrincipalId", min_length=1)
    service_principal_key: dict[str, Any] = Field(alias="ServicePrincipalKey", repr=False)
    sts_base_addresses: list[str] = Field(alias="SecurityTokenServiceBaseAddresses", min_length=1)
    api_base_addresses: list[str] = Field(alias="ApiBaseAddresses", min_length=1)

    @field_validator("service_principal_key", mode="before")
    @classmethod
    def _key_may_be_embedded_json(cls, value: Any) -> Any:
        """Some exports carry the JWK as a JSON string rather than an object."""
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                raise ValueError("is a string that is not a JSON Web Key") from None
        return value

    @field_validator("sts_base_addresses", "api_base_addresses")
    @classmethod
    def _addresses_are_urls(cls, value: list[str]) -> list[str]:
        for address in value:
            if not address.startswith(("https://", "http://")):
                raise ValueError("must contain absolute http(s) URLs")
        return [address.rstrip("/") for address in value]

    def __repr__(self) -> str:
        return f"ConnectionFile(tenant_id={self.tenant_id!r}, service_principal_id={self.service_principal_id!r})"

    __str__ = __repr__

    @property
    def client_id(self) -> str:
        return contract.client_id(self.service_principal_id, self.tenant_id)

    @property
    def token_endpoint(self) -> str:
        return self.sts_base_addresses[0] + contract.TOKEN_PATH

    @property
    def default_agent_service_url(self) -> str:
        return self.api_base_addresses[0] + contract.AGENT_SERVICE_SUFFIX

    @property
    def key_id(self) -> str | None:
        kid = self.service_principal_key.get("kid")
        return kid if isinstance(kid, str) and kid else None

    @cached_property
    def signing_key(self) -> rsa.RSAPrivateKey:
        return private_key_from_jwk(self.service_principal_key)


def parse_connection_file(text: str) -> ConnectionFile:
    """Parse and check the connection file's JSON text (e.g. from an app setting resolved from Key Vault)."""
    stripped = text.strip()
    if is_key_vault_reference(stripped):
        raise ConnectionFileError(f"the Clearance connection file setting {KEY_VAULT_HELP}")
    if not stripped:
        raise ConnectionFileError("the Clearance connection file is empty")
    try:
        document = json.loads(stripped)
    except json.JSONDecodeError as exc:
        raise ConnectionFileError(
            f"the Clearance connection file is not valid JSON (line {exc.lineno}, column {exc.colno})"
        ) from None
    if not isinstance(document, dict):
        raise ConnectionFileError("the Clearance connection file must be a JSON object")
    try:
        connection = ConnectionFile.model_validate(document)
    except ValidationError as exc:
        raise ConnectionFileError(describe_validation_error(exc, source="Clearance connection file")) from None
    try:
        _ = connection.signing_key
    except JwkError as exc:
        raise ConnectionFileError(f"Clearance connection file: ServicePrincipalKey: {exc}") from None
    if connection.key_id is None:
        raise ConnectionFileError("Clearance connection file: ServicePrincipalKey has no 'kid'")
    return connection


def load_connection_file(path: str | Path) -> ConnectionFile:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConnectionFileError(f"cannot read the Clearance connection file {path}: {exc.strerror}") from None
    return parse_connection_file(text)
