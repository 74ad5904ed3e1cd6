"""funchost: NCRONTAB schedules, host.json TimeSpans and options, app settings."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from devstack.funchost import ConfigError, HostConfig, NCrontab, ScheduleError, load_settings, parse_timespan
from devstack.funchost.config import resolve


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("0 */5 * * * *", "2024-01-01T10:02:03", ["2024-01-01T10:05:00", "2024-01-01T10:10:00"]),
        ("*/15 * * * * *", "2024-01-01T10:00:00", ["2024-01-01T10:00:15", "2024-01-01T10:00:30"]),
        ("0 0 * * * *", "2024-01-01T23:30:00", ["2024-01-02T00:00:00", "2024-01-02T01:00:00"]),
        ("30 15 9 * * *", "2024-01-01T09:15:30", ["2024-01-02T09:15:30", "2024-01-03T09:15:30"]),
        ("0 0 9-17/4 * * *", "2024-01-01T10:00:00", ["2024-01-01T13:00:00", "2024-01-01T17:00:00"]),
        ("0 0,30 8,20 * * *", "2024-01-01T08:00:00", ["2024-01-01T08:30:00", "2024-01-01T20:00:00"]),
        ("0 0 0 * * 1-5", "2024-01-05T12:00:00", ["2024-01-08T00:00:00", "2024-01-09T00:00:00"]),  # Fri -> Mon
        ("0 0 0 * * Sun", "2024-01-01T00:00:00", ["2024-01-07T00:00:00", "2024-01-14T00:00:00"]),
        ("0 0 0 * * 7", "2024-01-01T00:00:00", ["2024-01-07T00:00:00", "2024-01-14T00:00:00"]),
        ("0 0 0 31 * *", "2024-01-31T00:00:00", ["2024-03-31T00:00:00", "2024-05-31T00:00:00"]),
        ("0 0 12 29 2 *", "2024-03-01T00:00:00", ["2028-02-29T12:00:00", "2032-02-29T12:00:00"]),
        ("0 0 0 1 Jan,Jul *", "2024-02-01T00:00:00", ["2024-07-01T00:00:00", "2025-01-01T00:00:00"]),
        ("59 59 23 31 12 *", "2024-12-31T23:59:58", ["2024-12-31T23:59:59", "2025-12-31T23:59:59"]),
        ("5/20 * * * * *", "2024-01-01T00:00:00", ["2024-01-01T00:00:05", "2024-01-01T00:00:25"]),
    ],
)
def test_next_occurrences(expression: str, after: str, expected: list[str]) -> None:
    schedule = NCrontab.parse(expression)
    assert schedule.next_occurrences(at(after), 2) == [at(text) for text in expected]


def test_day_of_month_and_day_of_week_must_both_match() -> None:
    """NCrontab (the host's library) ANDs the two day fields; classic cron ORs them."""
    schedule = NCrontab.parse("0 0 0 13 * 5")  # Friday the 13th
    assert schedule.next_after(at("2024-01-01T00:00:00")) == at("2024-09-13T00:00:00")


def test_next_after_is_strict_drops_fractions_and_works_in_utc() -> None:
    schedule = NCrontab.parse("* * * * * *")
    assert schedule.next_after(at("2024-01-01T10:00:00")) == at("2024-01-01T10:00:01")
    assert schedule.next_after(at("2024-01-01T10:00:00.900")) == at("2024-01-01T10:00:01")
    hourly = NCrontab.parse("0 0 * * * *")
    plus_two = timezone(timedelta(hours=2))
    local = datetime(2024, 1, 1, 12, 30, tzinfo=plus_two)  # 10:30 UTC
    assert hourly.next_after(local) == at("2024-01-01T11:00:00")
    assert hourly.next_after(datetime(2024, 1, 1, 10, 30)) == at("2024-01-01T11:00:00")  # naive = UTC
    assert hourly.matches(at("2024-01-01T11:00:00")) and not hourly.matches(at("2024-01-01T11:00:01"))


@pytest.mark.parametrize(
    "expression",
    [
        "0 */5 * * *",  # five fields (classic cron)
        "0 0 */5 * * * *",  # seven
        "60 * * * * *",
        "* 60 * * * *",
        "* * 24 * * *",
        "* * * 0 * *",
        "* * * * 13 *",
        "* * * * * 8",
        "*/0 * * * * *",
        "10-5 * * * * *",
        "1,,2 * * * * *",
        "a * * * * *",
        "* * * * Foo *",
        "0 0 0 30 2 *",  # never fires
        "",
    ],
)
def test_invalid_schedules_are_rejected(expression: str) -> None:
    with pytest.raises(ScheduleError):
        NCrontab.parse(expression)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("00:01:00", 60), ("00:00:00", 0), ("02:00:00", 7200), ("1.02:03:04", 93784), ("00:00:01.5", 1.5), ("00:10", 600)],
)
def test_timespans(text: str, seconds: float) -> None:
    assert parse_timespan(text) == seconds


@pytest.mark.parametrize("text", ["60", "1:2:3:4", "abc", "", "-00:01:00"])
def test_bad_timespans(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_timespan(text)


def write_host_json(tmp_path, document: dict) -> HostConfig:
    (tmp_path / "host.json").write_text(json.dumps({"version": "2.0", **document}))
    return HostConfig.load(tmp_path)


def test_host_json_defaults_are_the_real_hosts(tmp_path) -> None:
    config = write_host_json(tmp_path, {})
    queues = config.queues
    assert (queues.batch_size, queues.new_batch_threshold, queues.max_dequeue_count) == (16, 8, 5)
    assert (queues.visibility_timeout, queues.max_polling_interval, queues.message_encoding) == (0, 60, "base64")
    assert config.function_timeout == 30 * 60


def test_host_json_queue_options_are_read(tmp_path) -> None:
    queues = {
        "batchSize": 4, "newBatchThreshold": 1, "maxDequeueCount": 2, "visibilityTimeout": "00:00:30",
        "maxPollingInterval": "00:00:02", "messageEncoding": "None",
    }  # fmt: skip
    config = write_host_json(tmp_path, {"functionTimeout": "02:00:00", "extensions": {"queues": queues}})
    assert config.queues.batch_size == 4 and config.queues.new_batch_threshold == 1
    assert config.queues.max_dequeue_count == 2 and config.queues.visibility_timeout == 30
    assert config.queues.max_polling_interval == 2 and config.queues.message_encoding == "none"
    assert config.function_timeout == 7200
    assert config.with_max_polling_interval(0.5).queues.max_polling_interval == 0.5
    assert write_host_json(tmp_path, {"functionTimeout": "-1"}).function_timeout is None


def test_the_repo_host_json_is_valid() -> None:
    from devstack.funchost.host import REPO_ROOT

    config = HostConfig.load(REPO_ROOT)
    assert config.queues.message_encoding in ("base64", "none")


@pytest.mark.parametrize(
    "document",
    [
        {"extensions": {"queues": {"batchSize": 33}}},
        {"extensions": {"queues": {"batchSize": "4"}}},
        {"extensions": {"queues": {"messageEncoding": "utf8"}}},
        {"extensions": {"queues": {"maxPollingInterval": "00:00:00"}}},
        {"extensions": {"queues": {"visibilityTimeout": 30}}},
        {"functionTimeout": "2h"},
    ],
)
def test_bad_host_json_is_rejected(tmp_path, document: dict) -> None:
    with pytest.raises(ConfigError):
        write_host_json(tmp_path, document)


def test_host_json_needs_version_2(tmp_path) -> None:
    (tmp_path / "host.json").write_text("{}")
    with pytest.raises(ConfigError, match="version"):
        HostConfig.load(tmp_path)


def test_settings_come_from_the_file_then_the_dict(tmp_path) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": {"A": "file", "B": "file", "FLAG": True, "N": 3}}))
    settings = load_settings({"B": "dict"}, path)
    assert settings == {"A": "file", "B": "dict", "FLAG": "true", "N": "3"}
    path.write_text(json.dumps({"A": 1}))
    with pytest.raises(ConfigError, match="Values"):
        load_settings(None, path)


def test_setting_references_resolve_or_name_the_missing_setting() -> None:
    settings = {"QUEUE": "jobs", "SECRET": "hunter2"}
    assert resolve("%QUEUE%", settings, "x") == "jobs"
    assert resolve("prefix-%QUEUE%-suffix", settings, "x") == "prefix-jobs-suffix"
    with pytest.raises(ConfigError, match="'MISSING' is not set") as error:
        resolve("%SECRET%-%MISSING%", settings, "function 'f'")  # the secret is resolved before the failure
    assert "function 'f'" in str(error.value)
    assert "hunter2" not in str(error.value) and "%SECRET%-%MISSING%" not in str(error.value)
