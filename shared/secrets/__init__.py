"""Credentials at rest: short secrets sealed with AES-256-GCM before they reach Table Storage.

`sealing.py` is the format and the `Sealer`; `keyring.py` keeps the data keys (wrapped by a Key Vault key,
or by a local-only key file on the local stack) in the app-only credentials table. See docs/security.md.
"""
