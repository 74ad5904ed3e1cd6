"""A Key Vault stand-in for tests: one RSA key, the wrapKey/unwrapKey/get-key routes the agent's
`KeyVaultKeyWrapper` reaches through the real `azure-keyvault-keys` client, over HTTPS on loopback.

It speaks the parts of the Key Vault REST API the client uses (api-version 7.x): the bearer challenge
(a 401 with `WWW-Authenticate` to a request without a token), `GET /keys/{name}[/{version}]` (the public
key, so the client wraps locally as it does against Key Vault) and `POST /keys/{name}/{version}/wrapkey` and
`/unwrapkey` (RSA-OAEP-256). `fail(status, count)` answers the next `count` key requests with `status`
(429 with `Retry-After: 0`, 503, 403…), as a throttled, failing or forbidding vault would. TLS uses a
self-signed certificate for 127.0.0.1 (`ca_file`): point `REQUESTS_CA_BUNDLE` at it. Never deployed.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import ssl
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

OAEP_256 = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
OPERATIONS = ("wrapkey", "unwrapkey")


def _key_route(path: str) -> tuple[str, str | None, str | None] | None:
    """(name, version or None, operation or None) of /keys/{name}[/{version}][/wrapkey|unwrapkey]."""
    parts = [part for part in path.split("/") if part]
    if len(parts) < 2 or parts[0] != "keys":
        return None
    operation = parts.pop() if parts[-1] in OPERATIONS else None
    if len(parts) > 3:
        return None
    return parts[1], (parts[2] if len(parts) == 3 else None), operation


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class KeyVaultStandIn:
    """Start with `start()`, stop with `stop()`; `key_uri` is the versionless key id to configure."""

    def __init__(self, key_name: str = "vms-credentials-kek") -> None:
        self.key_name = key_name
        self.version = "0" * 31 + "1"
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._lock = threading.Lock()
        self._faults: list[int] = []
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status), tokens never recorded
        self._dir = Path(tempfile.mkdtemp(prefix="kv-stand-in-"))
        self.ca_file = str(self._dir / "cert.pem")
        self._server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"https://127.0.0.1:{self._server.server_port}"

    @property
    def key_uri(self) -> str:
        return f"{self.base_url}/keys/{self.key_name}"

    def fail(self, status: int, count: int = 1) -> None:
        with self._lock:
            self._faults += [status] * count

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def start(self) -> KeyVaultStandIn:
        cert_file, key_file = self._write_certificate()
        server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True, name="kv-stand-in").start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for path in self._dir.iterdir():
            path.unlink()
        self._dir.rmdir()

    def _write_certificate(self) -> tuple[str, str]:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        Path(self.ca_file).write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_file = self._dir / "key.pem"
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return self.ca_file, str(key_file)

    def _answer(self, method: str, path: str, authorized: bool, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if not authorized:
            return 401, {}
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
        if fault is not None:
            return fault, {"error": {"code": "Throttled" if fault == 429 else "Forbidden", "message": "stand-in"}}
        route = _key_route(path)
        if route is None or route[0] != self.key_name or route[1] not in (None, self.version):
            return 404, {"error": {"code": "KeyNotFound", "message": "no such key"}}
        operation = route[2]
        kid = f"{self.base_url}/keys/{self.key_name}/{self.version}"
        if method == "GET" and operation is None:
            numbers = self._key.public_key().public_numbers()
            size = (numbers.n.bit_length() + 7) // 8
            jwk = {"kid": kid, "kty": "RSA", "key_ops": ["wrapKey", "unwrapKey"]}
            jwk |= {"n": _b64(numbers.n.to_bytes(size, "big")), "e": _b64(numbers.e.to_bytes(3, "big"))}
            return 200, {"key": jwk, "attributes": {"enabled": True, "exportable": False}}
        if method == "POST" and operation and body.get("alg") == "RSA-OAEP-256":
            value = _unb64(str(body.get("value", "")))
            if operation == "wrapkey":
                return 200, {"kid": kid, "value": _b64(self._key.public_key().encrypt(value, OAEP_256))}
            return 200, {"kid": kid, "value": _b64(self._key.decrypt(value, OAEP_256))}
        return 400, {"error": {"code": "BadParameter", "message": "unsupported"}}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    body = {}
                path = self.path.split("?", 1)[0]
                authorized = (self.headers.get("Authorization") or "").startswith("Bearer ")
                status, answer = stand_in._answer(self.command, path, authorized, body)
                stand_in.requests.append((self.command, path, status))
                data = json.dumps(answer).encode() if answer else b""
                self.send_response(status)
                if status == 401:
                    self.send_header(
                        "WWW-Authenticate",
                        'Bearer authorization="https://login.microsoftonline.com/tenant-0", '
                        'resource="https://vault.azure.net"',
                    )
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
