"""funchost against a real Azurite: queue and timer semantics, scale-out, crash and shutdown.

The fixture app (funchost_apps/basic) records each invocation as a JSON line in FUNCHOST_RECORD_FILE.
Its host.json: batchSize 4, newBatchThreshold 2, maxDequeueCount 3, visibilityTimeout 1 s.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import logging
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueClient, TextBase64EncodePolicy

from devstack.funchost import FuncHostError, FunctionHost, HostProcess
from devstack.funchost.errors import ConfigError

APP = Path(__file__).parent / "funchost_apps" / "basic"
QUEUE_ONLY = {"AzureWebJobs.timer_counter.Disabled": "true"}
TIMER_ONLY = {"AzureWebJobs.queue_recorder.Disabled": "true"}
FAST = {"max_polling_interval": 0.3, "lease_retry_interval": 0.5}


def wait_until(condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Bench:
    """One test's queue, record file and hosts (all stopped at teardown)."""

    def __init__(self, connection: str, tmp_path: Path) -> None:
        self.connection = connection
        self.tmp_path = tmp_path
        self.queue_name = f"fh-{uuid.uuid4().hex[:12]}"
        self.host_id = f"fh-{uuid.uuid4().hex[:12]}"
        self.record_file = tmp_path / "records.jsonl"
        self.record_file.touch()
        self.sender = QueueClient.from_connection_string(
            connection, self.queue_name, message_encode_policy=TextBase64EncodePolicy()
        )
        self.raw = QueueClient.from_connection_string(connection, self.queue_name)
        self.poison = QueueClient.from_connection_string(connection, self.queue_name + "-poison")
        self.sender.create_queue()
        self.hosts: list[FunctionHost] = []
        self.processes: list[HostProcess] = []

    def settings(self, **extra: str) -> dict[str, str]:
        return {
            "AzureWebJobsStorage": self.connection,
            "FUNCHOST_TEST_QUEUE": self.queue_name,
            "FUNCHOST_TEST_SCHEDULE": "* * * * * *",
            "FUNCHOST_RECORD_FILE": str(self.record_file),
            **extra,
        }

    def host(self, extra: dict[str, str], app_dir: Path = APP, **options: Any) -> FunctionHost:
        options = {**FAST, "host_id": self.host_id, **options}
        host = FunctionHost(app_dir, self.settings(**extra), **options)
        self.hosts.append(host)
        return host.start()

    def process(self, extra: dict[str, str], **options: Any) -> HostProcess:
        options = {
            **FAST,
            "host_id": self.host_id,
            "log_path": self.tmp_path / f"host{len(self.processes)}.log",
            **options,
        }
        process = HostProcess(APP, self.settings(**extra), **options)
        self.processes.append(process)
        return process.start()

    def send(self, body: dict[str, Any]) -> str:
        return self.sender.send_message(json.dumps(body)).id

    def records(self, event: str | None = None, message_id: str | None = None) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self.record_file.read_text().splitlines() if line.strip()]
        return [
            line
            for line in lines
            if (event is None or line["event"] == event) and (message_id is None or line.get("id") == message_id)
        ]

    def wait_records(self, event: str, count: int, message_id: str | None = None, timeout: float = 10.0) -> list[dict]:
        def enough() -> list[dict] | None:
            records = self.records(event, message_id)
            return records if len(records) >= count else None

        return wait_until(enough, timeout, f"{count} {event!r} record(s)")

    def queue_is_empty(self) -> bool:
        return self.raw.get_queue_properties().approximate_message_count == 0

    def poison_texts(self) -> list[str]:
        try:
            return [message.content for message in self.poison.peek_messages(max_messages=32)]
        except ResourceNotFoundError:  # no poison queue yet
            return []

    def close(self) -> None:
        for process in self.processes:
            process.kill()
        for host in self.hosts:
            host.stop(timeout=5)


@pytest.fixture
def bench(stack, tmp_path: Path) -> Iterator[Bench]:
    bench = Bench(stack.storage_connection_string, tmp_path)
    yield bench
    bench.close()


def app_copy(tmp_path: Path, function_timeout: str | None = None, **queues: Any) -> Path:
    """The fixture app with host.json changes."""
    app = tmp_path / "app"
    shutil.copytree(APP, app, ignore=shutil.ignore_patterns("__pycache__"))
    document = json.loads((app / "host.json").read_text())
    document["extensions"]["queues"].update(queues)
    if function_timeout is not None:
        document["functionTimeout"] = function_timeout
    (app / "host.json").write_text(json.dumps(document))
    return app


# -- queue trigger -----------------------------------------------------------------------------


def test_a_base64_json_message_is_delivered_decoded_and_deleted(bench: Bench) -> None:
    bench.host(QUEUE_ONLY)
    message_id = bench.send({"hello": "world", "n": 1})
    [record] = bench.wait_records("done", 1)
    assert record["id"] == message_id and record["dequeue_count"] == 1
    assert record["json"] == {"hello": "world", "n": 1} and record["body"] == '{"hello": "world", "n": 1}'
    assert record["insertion_time"] and record["expiration_time"] and record["has_pop_receipt"]
    wait_until(bench.queue_is_empty, 5, "the message to be deleted")
    assert bench.poison_texts() == []


def test_a_failing_message_is_retried_after_the_visibility_timeout_then_poisoned(bench: Bench) -> None:
    bench.host(QUEUE_ONLY)
    always = bench.send({"fail": 99})
    once = bench.send({"fail": 1})
    wait_until(bench.poison_texts, 15, "the poison queue")
    starts = bench.records("start", always)
    assert [record["dequeue_count"] for record in starts] == [1, 2, 3]  # maxDequeueCount 3
    gaps = [later["time"] - earlier["time"] for earlier, later in itertools.pairwise(starts)]
    assert all(gap >= 0.8 for gap in gaps), gaps  # visibilityTimeout "00:00:01"
    [poisoned] = bench.poison_texts()
    assert json.loads(base64.b64decode(poisoned)) == {"fail": 99}  # still Base64, as the real host copies it
    [done] = bench.wait_records("done", 1, once)
    assert done["dequeue_count"] == 2
    wait_until(bench.queue_is_empty, 5, "the queue to be empty")


def test_a_raw_message_goes_to_poison_without_running(bench: Bench) -> None:
    """The Storage Queues extension 5.x moves an undecodable message to poison at once, unchanged."""
    bench.host(QUEUE_ONLY)
    bench.raw.send_message("not base64! {}")
    good = bench.send({"fine": True})
    bench.wait_records("done", 1, good)
    assert wait_until(bench.poison_texts, 5, "the poison queue") == ["not base64! {}"]
    assert [record["id"] for record in bench.records()] == [good, good]
    wait_until(bench.queue_is_empty, 5, "the queue to be empty")


def test_message_encoding_none_delivers_raw_text(bench: Bench, tmp_path: Path) -> None:
    bench.host(QUEUE_ONLY, app_copy(tmp_path, messageEncoding="none"))
    bench.raw.send_message("plain text, not Base64")
    [record] = bench.wait_records("done", 1)
    assert record["body"] == "plain text, not Base64" and record["json"] is None


def test_a_long_run_stays_invisible_and_two_hosts_process_each_message_once(bench: Bench, tmp_path: Path) -> None:
    first = bench.host(QUEUE_ONLY, instance_id="host-a", message_visibility=2)
    second = bench.host(QUEUE_ONLY, instance_id="host-b", message_visibility=2)
    gate = tmp_path / "gate"
    long_id = bench.send({"sleep": 5})  # 2.5 times its visibility: renewed twice
    held_ids = {bench.send({"n": n, "gate": str(gate)}) for n in range(6)}
    # A host fetches a batch of 4 only while it runs 2 or fewer, so it runs at most 6 at once: the 7 are
    # all running only when both hosts took some.
    starts = bench.wait_records("start", 7, timeout=20)
    gate.touch()
    bench.wait_records("done", 7, timeout=15)
    assert sorted(record["id"] for record in bench.records("start")) == sorted([long_id, *held_ids])  # each once
    assert all(record["dequeue_count"] == 1 for record in bench.records("start"))
    hosts = [record["thread"].split("/")[0] for record in starts]
    assert sorted(set(hosts)) == sorted([first.instance_id, second.instance_id])
    wait_until(bench.queue_is_empty, 5, "the queue to be empty")


def test_function_timeout_is_logged_and_counts_as_a_failure(
    bench: Bench, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="devstack.funchost")
    bench.host(QUEUE_ONLY, app_copy(tmp_path, function_timeout="00:00:01"))
    message_id = bench.send({"sleep_first": 1.5})
    [done] = bench.wait_records("done", 2, message_id)[-1:]
    assert done["dequeue_count"] == 2  # the timed-out first run was retried
    assert any("Timeout value of 1 s" in record.getMessage() for record in caplog.records)


def test_stop_waits_for_running_invocations_and_takes_no_new_work(bench: Bench, tmp_path: Path) -> None:
    host = bench.host(QUEUE_ONLY)
    gate = tmp_path / "gate"
    message_id = bench.send({"gate": str(gate)})
    bench.wait_records("start", 1)
    stopping = threading.Thread(target=lambda: stopped.append(host.stop()))
    stopped: list[bool] = []
    stopping.start()
    wait_until(lambda: not host.running, 5, "stop() to begin")
    assert stopping.is_alive() and not bench.records("done")  # still waiting for the run
    gate.touch()
    stopping.join(timeout=15)
    assert stopped == [True]
    assert bench.records("done", message_id)
    assert bench.queue_is_empty()  # settled before stop() returned
    assert [t.name for t in threading.enumerate() if t.name.startswith(host.instance_id + "/")] == []
    late = bench.send({"late": True})  # nothing is left that could take it
    assert [m.id for m in bench.raw.peek_messages()] == [late] and len(bench.records("start")) == 1


# -- timer trigger ---------------------------------------------------------------------------


def test_a_timer_runs_on_schedule_without_overlapping_and_late_runs_are_past_due(bench: Bench) -> None:
    bench.host(TIMER_ONLY | {"FUNCHOST_TIMER_SLEEP": "1.3"})  # every second, runs last 1.3 s
    bench.wait_records("done", 3, timeout=10)
    runs = bench.records()
    events = [record["event"] for record in runs]
    assert events[: 2 * 3] == ["start", "done"] * 3  # never two at once
    starts = [record for record in runs if record["event"] == "start"]
    assert starts[0]["past_due"] is False
    assert all(record["past_due"] is True for record in starts[1:3])  # each missed an occurrence
    assert starts[1]["schedule_status"]["Last"] and starts[1]["schedule_status"]["Next"]


def test_a_failing_timer_is_not_retried_but_keeps_its_schedule(bench: Bench) -> None:
    bench.host(TIMER_ONLY | {"FUNCHOST_TIMER_FAIL": "1"})
    starts = bench.wait_records("start", 3, timeout=6)
    assert not bench.records("done")
    occurrences = [datetime.fromisoformat(record["schedule_status"]["Next"]) for record in starts[:3]]
    assert all(moment.microsecond == 0 for moment in occurrences)  # "* * * * * *": whole seconds
    assert all(later > earlier for earlier, later in itertools.pairwise(occurrences))  # each run its own occurrence


def test_only_one_of_two_hosts_runs_a_timer_and_the_other_takes_over(bench: Bench) -> None:
    first = bench.host(TIMER_ONLY, instance_id="timer-a")
    second = bench.host(TIMER_ONLY, instance_id="timer-b")
    bench.wait_records("done", 3, timeout=8)
    runners = {record["thread"].split("/")[0] for record in bench.records()}
    assert len(runners) == 1
    holder, other = (first, second) if runners == {"timer-a"} else (second, first)
    holder.stop()
    count = len(bench.records("done"))
    wait_until(lambda: len(bench.records("done")) >= count + 2, 8, "the other host to take over")
    assert {record["thread"].split("/")[0] for record in bench.records()[2 * count :]} == {other.instance_id}


def test_use_monitor_runs_a_missed_occurrence_at_startup(bench: Bench) -> None:
    missed = datetime.now(UTC) - timedelta(minutes=5)
    status = {"Last": (missed - timedelta(days=365)).isoformat(), "Next": missed.isoformat(), "LastUpdated": None}
    blobs = BlobServiceClient.from_connection_string(bench.connection)
    with contextlib.suppress(ResourceExistsError):
        blobs.create_container("azure-webjobs-hosts")
    blob = blobs.get_blob_client("azure-webjobs-hosts", f"timers/{bench.host_id}/timer_counter/status")
    blob.upload_blob(json.dumps(status), overwrite=True)
    bench.host(TIMER_ONLY | {"FUNCHOST_TEST_SCHEDULE": "0 0 0 1 1 *"})  # yearly
    [record] = bench.wait_records("done", 1, timeout=5)
    assert record["past_due"] is True
    saved = wait_until(lambda: json.loads(blob.download_blob().readall()), 5, "the status")
    assert datetime.fromisoformat(saved["Next"]) > datetime.now(UTC)


# -- host processes ----------------------------------------------------------------------------


def test_a_killed_host_process_message_is_redelivered_to_another_host(bench: Bench) -> None:
    """How soon after the kill it is redelivered is measured by `make bench` (funchost_redelivery_seconds)."""
    crashing = bench.process(QUEUE_ONLY, instance_id="doomed", message_visibility=6)
    message_id = bench.send({"sleep_first": 60})
    [first] = bench.wait_records("start", 1, message_id)
    assert first["pid"] == crashing.pid and first["dequeue_count"] == 1
    crashing.kill()
    assert bench.raw.peek_messages() == []  # the dead host's message stays invisible for a while...
    assert bench.raw.get_queue_properties().approximate_message_count == 1  # ...but it is not lost
    survivor = bench.host(QUEUE_ONLY, instance_id="survivor", message_visibility=3)
    [done] = bench.wait_records("done", 1, message_id, timeout=15)
    assert done["dequeue_count"] == 2 and done["thread"].startswith(survivor.instance_id)
    wait_until(bench.queue_is_empty, 5, "the queue to be empty")
    log = crashing.output()
    assert f"MessageId={message_id}, DequeueCount=1" in log and "Executing 'Functions.queue_recorder'" in log


def test_sigterm_lets_the_running_invocation_finish_and_never_logs_secrets(bench: Bench) -> None:
    process = bench.process(QUEUE_ONLY | {"SOME_API_SECRET": "s3cr3t-value"}, instance_id="graceful")
    message_id = bench.send({"sleep": 1.5, "payload": "private-body-text"})
    bench.wait_records("start", 1, message_id)
    assert process.stop() == 0
    assert bench.records("done", message_id)
    assert bench.queue_is_empty()
    log = process.output()
    assert "Job host stopped" in log
    for secret in ("s3cr3t-value", "AccountKey", bench.connection.split("AccountKey=")[1][:20], "private-body-text"):
        assert secret not in log


def test_a_host_process_that_cannot_load_the_app_exits_with_a_clear_error(bench: Bench) -> None:
    settings = {"AzureWebJobsStorage": bench.connection, **QUEUE_ONLY}
    process = HostProcess(APP, settings, log_path=bench.tmp_path / "broken.log")
    bench.processes.append(process)
    with pytest.raises(FuncHostError, match="FUNCHOST_TEST_QUEUE' is not set"):
        process.start()
    assert process.returncode == 2


def test_a_host_whose_storage_is_unreachable_says_so_in_one_line_at_start(bench: Bench) -> None:
    unreachable = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey="
        + (bench.connection.split("AccountKey=")[1].split(";")[0])
        + ";BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;QueueEndpoint=http://127.0.0.1:9/devstoreaccount1;"
    )
    with pytest.raises(ConfigError, match=r"not reachable at http://127\.0\.0\.1:9") as raised:
        FunctionHost(APP, {**bench.settings(), "AzureWebJobsStorage": unreachable}, **FAST).start()
    assert "AccountKey" not in str(raised.value)


def test_host_json_is_overridden_by_azure_functions_job_host_settings(bench: Bench) -> None:
    host = bench.host(QUEUE_ONLY | {"AzureFunctionsJobHost__extensions__queues__maxDequeueCount": "2"})
    assert host.config.queues.max_dequeue_count == 2


def test_a_failing_function_is_logged_in_one_line_with_the_traceback_only_at_debug(
    bench: Bench, caplog: pytest.LogCaptureFixture
) -> None:
    bench.host(QUEUE_ONLY)
    with caplog.at_level(logging.INFO, logger="devstack.funchost"):
        message_id = bench.send({"fail": True})
        bench.wait_records("start", 1, message_id)
        wait_until(lambda: "Exception while executing function" in caplog.text, 10, "the failure's log line")
    failure = next(r for r in caplog.records if "Exception while executing function" in r.getMessage())
    assert failure.exc_info is None and "Traceback" not in caplog.text
