"""The two messages on the jobs queue; both carry only ids, so no job is too big for a queue message.

- A **job message** (from poll_jobs): which lock of which job to plan. What the Registry offered (the
  type and the parameters) was written to Table Storage once, when the job was locked (in the lock record,
  or ledger.put_job when large). The poller's own message says `New`: no plan can exist for the lock unless
  this very message was delivered before, so its first delivery need not look for one.
- An **item message** (from the planner, or an item re-queued for later): which work item to run. What
  the item is and how far it got is in the ledger, never in the message.

Both carry `Tries`: how many deliveries of this message failed before claiming their work (an error
caught, or a run that died while planning). A copy sent in place of a failed delivery carries the count
forward, so a message that keeps failing reaches the poison queue after MAX_DEQUEUE_COUNT tries, even
though the host itself never sees it fail (see processor.py).

Both may carry an optional `Traceparent` (W3C trace context of the span that sent them), so one job is one
trace across instances; a message without one is as valid as before.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field, ValidationError

from shared.telemetry.tracing import current_traceparent
from shared.wire import CaseInsensitiveModel, UtcDatetime, describe_validation_error, format_utc


class MalformedMessage(ValueError):
    """The message is neither a job nor an item message; the text says why without quoting it."""


class JobMessage(CaseInsensitiveModel):
    job_id: str = Field(alias="JobId", min_length=1, max_length=200)
    generation: str = Field(default="", alias="Generation", max_length=64)
    tries: int = Field(default=0, alias="Tries", ge=0, le=1000)
    new: bool = Field(default=False, alias="New")
    """Sent by the poller right after the lock (copies and the sweep's messages are not new)."""
    previous: str = Field(default="", alias="Previous", max_length=200)
    """The message this one replaces (see processor.refresh): a work item it ran in its planning run (a job
    of one item runs it there) may be taken over at once."""
    job_type: str = Field(default="", alias="Type", max_length=100)
    """Only in messages of earlier versions, which carried the job itself."""
    parameters: dict[str, Any] | None = Field(default=None, alias="Parameters")
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
    tries: int = Field(default=0, alias="Tries", ge=0, le=1000)
    traceparent: str = Field(default="", alias="Traceparent", max_length=128)


def encode_job(job_id: str, generation: str, *, tries: int = 0, new: bool = False, previous: str = "") -> bytes:
    document: dict[str, Any] = {"JobId": job_id, "Generation": generation}
    if tries:
        document["Tries"] = tries
    if new:
        document["New"] = True
    if previous:
        document["Previous"] = previous
    return _dumps(_traced(document))


def encode_item(
    job_id: str, generation: str, item_id: str, *, previous: str = "", cleanup: int = 0, tries: int = 0
) -> bytes:
    document: dict[str, Any] = {"JobId": job_id, "Generation": generation, "ItemId": item_id}
    if previous:
        document["Previous"] = previous
    if cleanup:
        document["Cleanup"] = cleanup
    if tries:
        document["Tries"] = tries
    return _dumps(_traced(document))


def encode_again(message: JobMessage | ItemMessage, *, tries: int, previous: str = "") -> bytes:
    """A copy of `message` to send in its place, carrying its count of failed tries."""
    if isinstance(message, ItemMessage):
        return encode_item(
            message.job_id, message.generation, message.item_id, previous=previous, cleanup=message.cleanup,
            tries=tries,
        )  # fmt: skip
    if message.parameters is not None and not message.generation:  # an earlier version's message, kept whole
        document: dict[str, Any] = {"JobId": message.job_id, "Type": message.job_type, "Parameters": message.parameters}
        if message.created_utc is not None:
            document["CreatedUtc"] = format_utc(message.created_utc)
        document["Tries"] = tries
        return _dumps(document)
    return encode_job(message.job_id, message.generation, tries=tries, previous=previous)


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
