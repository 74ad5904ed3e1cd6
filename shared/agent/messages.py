"""The two messages on the jobs queue.

- A **job message** (from poll_jobs): the job as the Registry described it. The parameters travel
  with it because the Registry contract has no call to fetch a job again; the lock token does not
  (it lives in the lock record).
- An **item message** (from the planner, or an item re-queued for later): only ids. What the item is
  and how far it got is in the ledger, never in the message.

Both may carry an optional `Traceparent` (W3C trace context of the span that sent them), so one job is one
trace across instances; a message without one is as valid as before.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field, ValidationError

from shared.registry.contract import Job
from shared.telemetry.tracing import current_traceparent
from shared.wire import CaseInsensitiveModel, UtcDatetime, describe_validation_error, format_utc


class MalformedMessage(ValueError):
    """The message is neither a job nor an item message; the text says why without quoting it."""


class JobMessage(CaseInsensitiveModel):
    job_id: str = Field(alias="JobId", min_length=1, max_length=200)
    job_type: str = Field(alias="Type", min_length=1, max_length=100)
    parameters: dict[str, Any] = Field(default_factory=dict, alias="Parameters")
    created_utc: UtcDatetime | None = Field(default=None, alias="CreatedUtc")
    traceparent: str = Field(default="", alias="Traceparent", max_length=128)


class ItemMessage(CaseInsensitiveModel):
    job_id: str = Field(alias="JobId", min_length=1, max_length=200)
    generation: str = Field(alias="Generation", min_length=1, max_length=64)
    item_id: str = Field(alias="ItemId", min_length=1, max_length=200)
    previous: str = Field(default="", alias="Previous", max_length=200)
    """The message this one replaces (see processor.refresh): its run, if any, is dead or abandoned."""
    cleanup: int = Field(default=0, alias="Cleanup", ge=0, le=100)
    """How many times the VMS artefacts of this (finished) item failed to be removed so far."""
    traceparent: str = Field(default="", alias="Traceparent", max_length=128)


def encode_job(job: Job) -> bytes:
    document: dict[str, Any] = {"JobId": job.id, "Type": job.type, "Parameters": job.parameters}
    if job.created_utc is not None:
        document["CreatedUtc"] = format_utc(job.created_utc)
    return _dumps(_traced(document))


def encode_item(job_id: str, generation: str, item_id: str, *, previous: str = "", cleanup: int = 0) -> bytes:
    document: dict[str, Any] = {"JobId": job_id, "Generation": generation, "ItemId": item_id}
    if previous:
        document["Previous"] = previous
    if cleanup:
        document["Cleanup"] = cleanup
    return _dumps(_traced(document))


def decode_message(body: bytes) -> JobMessage | ItemMessage:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise MalformedMessage(f"the message is not JSON ({len(body)} bytes)") from None
    if not isinstance(document, dict):
        raise MalformedMessage("the message is JSON but not an object")
    is_item = any(str(key).lower() == "itemid" for key in document)
    model: type[JobMessage] | type[ItemMessage] = ItemMessage if is_item else JobMessage
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        source = "item message" if is_item else "job message"
        raise MalformedMessage(describe_validation_error(exc, source=source)) from None


def _traced(document: dict[str, Any]) -> dict[str, Any]:
    if traceparent := current_traceparent():
        document["Traceparent"] = traceparent
    return document


def _dumps(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode("utf-8")
