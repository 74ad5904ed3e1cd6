"""The key that seals Clearance lock tokens in the lock table: derived from the connection file.

A lock token is worth something only together with the connection file (every Registry call is signed
with its private key), so it is sealed under a key derived from that same private key: whoever reads the
lock table (an operator's role) sees no token, and whoever also holds the connection file (the app, an
operator running `ops release`) can open it — no Key Vault role needed. A new connection file (a rotated
service principal key) gives a new key: records of locks taken before it no longer open (see
docs/security.md).
"""

from __future__ import annotations

from shared.registry.connection_file import ConnectionFile
from shared.secrets.sealing import Sealer, derived_key

PURPOSE = "lock token"


def lock_token_sealer(connection: ConnectionFile) -> Sealer:
    private = connection.signing_key.private_numbers().d
    secret = private.to_bytes((private.bit_length() + 7) // 8, "big")
    return Sealer(derived_key(secret, PURPOSE), PURPOSE)
