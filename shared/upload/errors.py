"""What can go wrong with an upload, grouped by what the caller can do about it (`disposition`).

UploadError               any other storage answer: retry later                                 retry later
├── UploadTargetRefused   the SAS URI fails our policy (scheme, host): a setting of ours          misconfigured
├── RecipientKeyRejected  the ticket's JWK is not RSA or under 2048 bits: never retry            permanent
├── SasRejected           storage answered 403 (SAS expired or not authorised): ask for a new ticket, then retry later
├── UploadLimitExceeded   the file would break an Azure Blob limit (blocks, metadata)            permanent
└── UploadTransient       storage unreachable or 5xx after the SDK's retries                     retry later
"""

from __future__ import annotations

from shared.failures import ClassifiedError, Disposition


class UploadError(ClassifiedError):
    """Base class; messages never contain the SAS signature or key material."""


class UploadTargetRefused(UploadError):
    """The upload URI is not one we are allowed to send customer video to (UPLOAD_ALLOWED_HOSTS)."""

    disposition = Disposition.MISCONFIGURED


class RecipientKeyRejected(UploadError):
    """The encryption key in the upload ticket is unusable."""

    disposition = Disposition.PERMANENT


class SasRejected(UploadError):
    """Storage refused the SAS (403): it expired or does not grant create/write."""


class UploadLimitExceeded(UploadError):
    """The upload would exceed an Azure Blob Storage limit."""

    disposition = Disposition.PERMANENT


class UploadTransient(UploadError):
    """A temporary storage failure; the same upload may succeed later."""
