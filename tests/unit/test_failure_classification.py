"""Which failure leads to which outcome: an answer from the Registry, a VMS or storage becomes an error
(through the one status mapping of its boundary), and the error says what happens to the work item, to
planning and to a poll. No stack: answers are built as `requests` would hand them over."""

import json

import pytest
import requests

from shared.agent.errors import JobCanceled, LockGone, TakenOver
from shared.agent.work.ledger import LedgerRowChanged
from shared.agent.work.processor import planning_outcome
from shared.agent.work.worker import ITEM_OUTCOMES, item_outcome
from shared.failures import Disposition, disposition_of
from shared.http.retry import TransportFailure
from shared.http.sender import Call
from shared.registry.contract import Operation
from shared.registry.errors import (
    JobGone,
    LockConflict,
    LockTokenRefused,
    NotOurs,
    RegistryBadRequest,
    RegistryFailures,
    RegistryProtocolError,
    RegistryRateLimited,
    RegistryTransient,
    RegistryUnauthorized,
    RegistryUnavailable,
    UploadRejected,
)
from shared.upload.errors import (
    RecipientKeyRejected,
    SasRejected,
    UploadError,
    UploadLimitExceeded,
    UploadTargetRefused,
    UploadTransient,
)
from shared.vms.een.adapter import FAILURES as EEN
from shared.vms.errors import (
    CameraNotFound,
    DeviceUnavailable,
    NoFootage,
    VmsAuthError,
    VmsAuthRevoked,
    VmsInvalidRequest,
    VmsRateLimited,
    VmsTransient,
    VmsVendorError,
)
from shared.vms.rhombus.adapter import FAILURES as RHOMBUS
from shared.vms.verkada.adapter import FAILURES as VERKADA


def answer(status: int, body: object = None, *, url: str = "https://vms.test/x", headers: dict | None = None):
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode() if body is not None else b""
    response.headers.update(headers or {})
    response.url = url
    return response


def registry_error(status: int, operation: Operation, job_id: str | None = "job-1", **kwargs):
    return RegistryFailures().error_for(Call(operation.value, job_id), answer(status, **kwargs))


# ---- the Registry --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "operation", "error", "item", "planning"),
    [
        (409, Operation.RENEW, LockTokenRefused, "Lost", "Lost"),
        (409, Operation.COMPLETE_MEDIA, LockTokenRefused, "Lost", "Lost"),
        (410, Operation.PROGRESS, JobGone, "Lost", "Lost"),
        (404, Operation.INITIALIZE_UPLOAD, JobGone, "Lost", "Lost"),
        (401, Operation.INITIALIZE_UPLOAD, RegistryUnauthorized, "Released", "Released"),
        (403, Operation.CANCEL, RegistryUnauthorized, "Released", "Released"),
        (400, Operation.COMPLETE_THUMBNAIL, RegistryBadRequest, "Failed", "RetryLater"),
        (422, Operation.COMPLETE_MEDIA, UploadRejected, "RetryLater", "RetryLater"),
        (422, Operation.RENEW, RegistryProtocolError, "RetryLater", "RetryLater"),
        (429, Operation.INITIALIZE_UPLOAD, RegistryRateLimited, "RetryLater", "RetryLater"),
        (503, Operation.COMPLETE, RegistryTransient, "RetryLater", "RetryLater"),
        (302, Operation.RENEW, RegistryProtocolError, "RetryLater", "RetryLater"),
    ],
)
def test_registry_answers_lead_to_the_item_and_planning_outcomes(status, operation, error, item, planning):
    raised = registry_error(status, operation)
    assert type(raised) is error
    assert (item_outcome(raised), planning_outcome(raised)) == (item, planning)
    assert raised.status == status and raised.job_id == "job-1"


def test_a_registry_success_is_no_error():
    for status in (200, 201, 204):
        assert registry_error(status, Operation.RENEW) is None


def test_the_poller_skips_a_job_held_elsewhere_or_gone_and_stops_only_when_the_registry_is_out():
    """poller._take: NotOurs → skip the job; RegistryUnavailable → no more locks this poll."""
    assert isinstance(registry_error(409, Operation.LOCK), LockConflict)
    assert isinstance(registry_error(409, Operation.LOCK), NotOurs)
    assert isinstance(registry_error(404, Operation.LOCK), NotOurs)
    assert isinstance(registry_error(429, Operation.LOCK), RegistryUnavailable)
    assert isinstance(registry_error(500, Operation.LOCK), RegistryUnavailable)
    unreadable = registry_error(418, Operation.LOCK)
    assert isinstance(unreadable, RegistryProtocolError) and not isinstance(unreadable, RegistryUnavailable)
    unreachable = RegistryFailures().unreachable(Call("lock", "job-1"), TransportFailure("lock", "connect timeout"))
    assert isinstance(unreachable, RegistryTransient) and item_outcome(unreachable) == "RetryLater"


def test_a_404_on_a_call_about_no_job_is_not_read_as_the_job_being_gone():
    assert type(registry_error(404, Operation.LIST_JOBS, job_id=None)) is RegistryProtocolError


def test_the_problem_detail_is_kept_and_the_retry_after_read():
    limited = registry_error(429, Operation.RENEW, body={"title": "Too many", "detail": "slow down"},
                             headers={"Retry-After": "12"})  # fmt: skip
    assert "slow down" in str(limited) and limited.retry_after == 12


# ---- the VMS: one mapping, each vendor's style ------------------------------------------------------------


@pytest.mark.parametrize(
    ("failures", "status", "call", "error", "item"),
    [
        (EEN, 401, Call("media", "cam-1"), VmsAuthError, "Released"),
        (EEN, 403, Call("cameras"), VmsAuthError, "Released"),
        (EEN, 400, Call("export", "cam-1"), VmsInvalidRequest, "Failed"),
        (EEN, 404, Call("download"), NoFootage, "RetryLater"),
        (EEN, 404, Call("recorded_image", "cam-1"), NoFootage, "RetryLater"),
        (EEN, 404, Call("media", "cam-1"), CameraNotFound, "RetryLater"),
        (EEN, 404, Call("job"), VmsVendorError, "Failed"),
        (EEN, 503, Call("live_image", "cam-1"), DeviceUnavailable, "RetryLater"),
        (EEN, 503, Call("media", "cam-1"), VmsTransient, "RetryLater"),
        (EEN, 429, Call("media", "cam-1"), VmsRateLimited, "RetryLater"),
        (EEN, 418, Call("media", "cam-1"), VmsVendorError, "Failed"),
        (RHOMBUS, 401, Call("cameras"), VmsAuthError, "Released"),
        (RHOMBUS, 404, Call("clip"), CameraNotFound, "RetryLater"),
        (RHOMBUS, 404, Call("download"), NoFootage, "RetryLater"),
        (RHOMBUS, 503, Call("live_image", "cam-1"), DeviceUnavailable, "RetryLater"),
        (RHOMBUS, 502, Call("splice", "cam-1"), VmsTransient, "RetryLater"),
        (VERKADA, 403, Call("playlist", "cam-1"), VmsAuthError, "Released"),
        (VERKADA, 404, Call("segment", "cam-1"), NoFootage, "RetryLater"),
        (VERKADA, 404, Call("cameras"), VmsVendorError, "Failed"),
        (VERKADA, 503, Call("thumbnail", "cam-1"), VmsTransient, "RetryLater"),
    ],
)
def test_vms_answers_lead_to_the_item_outcome(failures, status, call, error, item):
    raised = failures.error_for(call, answer(status, {"message": "why"}))
    assert type(raised) is error
    assert item_outcome(raised) == item
    assert raised.vendor == failures.vendor and raised.status == status


def test_vms_messages_name_the_vendor_operation_and_camera_with_each_vendors_hint_and_no_secret():
    url = "https://api.verkada.test/stream.m3u8?org_id=o&camera_id=c&jwt=SECRET-JWT"
    refused = VERKADA.error_for(Call("playlist", "cam-7"), answer(401, {"message": "Token expired"}, url=url))
    assert str(refused).startswith("Verkada playlist for camera cam-7: HTTP 401 Token expired")
    assert "check VERKADA_API_KEY" in str(refused) and "SECRET-JWT" not in str(refused)
    rhombus = RHOMBUS.error_for(Call("cameras"), answer(403, {"message": "no"}))
    assert str(rhombus) == "Rhombus cameras: HTTP 403 (check RHOMBUS_API_KEY)"
    een = EEN.error_for(Call("media", "cam-1"), answer(400, {"status": "bad period"}))
    assert "EEN media for camera cam-1: HTTP 400 bad period" in str(een)


def test_a_verkada_429_without_retry_after_implies_its_cooldown():
    assert VERKADA.error_for(Call("cameras"), answer(429)).retry_after == 5.0
    assert VERKADA.error_for(Call("cameras"), answer(429, headers={"Retry-After": "9"})).retry_after == 9
    assert EEN.error_for(Call("cameras"), answer(429)).retry_after is None


def test_a_vms_success_is_no_error_and_an_unreachable_vms_is_transient():
    assert EEN.error_for(Call("cameras"), answer(200, {})) is None
    down = RHOMBUS.unreachable(Call("cameras"), TransportFailure("rhombus_cameras", "connection failed"))
    assert isinstance(down, VmsTransient) and str(down) == "Rhombus cameras: connection failed"


def test_a_revoked_een_grant_releases_the_job_like_any_refused_credential():
    assert item_outcome(VmsAuthRevoked("consent again")) == planning_outcome(VmsAuthRevoked("x")) == "Released"


# ---- upload, the agent's own errors, and everything else -------------------------------------------------


@pytest.mark.parametrize(
    ("error", "item"),
    [
        (UploadTargetRefused("host not allowed"), "Released"),
        (RecipientKeyRejected("1024-bit key"), "Failed"),
        (UploadLimitExceeded("50,001 blocks"), "Failed"),
        (SasRejected("403 twice"), "RetryLater"),
        (UploadTransient("503"), "RetryLater"),
        (UploadError("HTTP 409"), "RetryLater"),
        (LockGone("renewal answered 409"), "Lost"),
        (TakenOver("another run"), "TakenOver"),
        (JobCanceled("camera gone since planning"), "RetryLater"),
        (LedgerRowChanged("the plan kept changing"), "RetryLater"),
        (ValueError("a bug"), "RetryLater"),
    ],
)
def test_upload_agent_and_unknown_errors_lead_to_the_item_outcome(error, item):
    assert item_outcome(error) == item


def test_planning_releases_for_our_configuration_and_stops_for_a_lost_lock_else_tries_again():
    assert planning_outcome(UploadTargetRefused("x")) == "Released"
    assert planning_outcome(LockGone("x")) == "Lost"
    for error in (VmsTransient("x"), VmsVendorError("x"), RegistryBadRequest("x"), TakenOver("x"), OSError("x")):
        assert planning_outcome(error) == "RetryLater"


def test_every_disposition_has_an_item_outcome_and_foreign_errors_are_temporary():
    assert set(ITEM_OUTCOMES) == set(Disposition)
    assert disposition_of(KeyError("x")) is Disposition.RETRY_LATER
