"""The queue message from poll_jobs to process_job: the job as the Registry described it.

The lock token is not in the message (it lives in the lock record); the parameters are, because the
Registry contract has no call to fetch a job again.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field, ValidationError

from shared.registry.contract import Job
from shared.wire import CaseInsensitiveModel, UtcDatetime, describe_validation_error, format_utc


class MalformedMessage(ValueError):
    """The message is not a job message; the text says why without quoting it."""


class JobMessage(CaseInsensitiveModel):
    job_id: str = Field(alias="JobId", min_length=1, max_length=200)
    job_type: str = Field(alias="Type", min_length=1, max_length=100)
    parameters: dict[str, Any] = Field(default_factory=dict, alias="Parameters")
    created_utc: UtcDatetime | None = Field(default=None, alias="CreatedUtc")


def encode_job(job: Job) -> bytes:
    document = {"JobId": job.id, "Type": job.type, "Parameters": job.parameters}
    if job.created_utc is not None:
        document["CreatedUtc"] = format_utc(job.created_utc)
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


def decode_job(body: bytes) -> JobMessage:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise MalformedMessage(f"the message is not JSON ({len(body)} bytes)") from None
    try:
        return JobMessage.model_validate(document)
    except ValidationError as exc:
        raise MalformedMessage(describe_validation_error(exc, source="job message")) from None
