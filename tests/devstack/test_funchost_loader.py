"""funchost: indexing a Python v1 function app (function.json, imports, settings, clear errors)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from devstack.funchost import (
    ConfigError,
    FunctionHost,
    FunctionLoadError,
    QueueTrigger,
    ScheduleError,
    TimerTrigger,
    load_functions,
)
from devstack.funchost.host import REPO_ROOT, host_id_for

APP = Path(__file__).parent / "funchost_apps" / "basic"
CONNECTION = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=c2VjcmV0;"
    "QueueEndpoint=http://127.0.0.1:1/devstoreaccount1;"
)
SETTINGS = {
    "AzureWebJobsStorage": CONNECTION,
    "FUNCHOST_TEST_QUEUE": "loader-jobs",
    "FUNCHOST_TEST_SCHEDULE": "*/5 * * * * *",
}


def make_function(root: Path, name: str, bindings: list[dict], code: str = "def main(msg):\n    pass\n") -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "function.json").write_text(json.dumps({"scriptFile": "__init__.py", "bindings": bindings}))
    (folder / "__init__.py").write_text(code)
    (root / "host.json").write_text('{"version": "2.0"}')
    return root


QUEUE_BINDING = {"name": "msg", "type": "queueTrigger", "direction": "in", "queueName": "%Q%", "connection": "Conn"}


def test_the_fixture_app_is_indexed_with_resolved_settings() -> None:
    functions = {function.name: function for function in load_functions(APP, SETTINGS)}
    assert sorted(functions) == ["queue_recorder", "timer_counter"]
    queue = functions["queue_recorder"].trigger
    assert isinstance(queue, QueueTrigger)
    assert (queue.parameter, queue.queue_name, queue.poison_queue_name) == ("msg", "loader-jobs", "loader-jobs-poison")
    assert queue.connection == "AzureWebJobsStorage" and queue.connection_string == CONNECTION
    assert CONNECTION not in repr(queue)
    timer = functions["timer_counter"].trigger
    assert isinstance(timer, TimerTrigger)
    assert timer.parameter == "timer" and str(timer.schedule) == "*/5 * * * * *"
    assert timer.use_monitor and not timer.run_on_startup


def test_a_function_can_be_disabled_by_setting() -> None:
    settings = {**SETTINGS, "AzureWebJobs.timer_counter.Disabled": "true"}
    del settings["FUNCHOST_TEST_SCHEDULE"]  # a disabled function's settings are not needed
    assert [function.name for function in load_functions(APP, settings)] == ["queue_recorder"]


def test_the_repo_function_app_is_indexed() -> None:
    settings = {
        "AzureWebJobsStorage": CONNECTION,
        "POLL_SCHEDULE": "0 */1 * * * *",
        "RENEW_SCHEDULE": "*/30 * * * * *",
        "JOBS_QUEUE_NAME": "jobs",
    }
    functions = {function.name: type(function.trigger) for function in load_functions(REPO_ROOT, settings)}
    assert functions == {"poll_jobs": TimerTrigger, "process_job": QueueTrigger, "renew_locks": TimerTrigger}
    assert (
        host_id_for(REPO_ROOT, {}) and host_id_for(REPO_ROOT, {"AzureFunctionsWebHost__hostid": "My_App"}) == "my-app"
    )


def test_relative_imports_other_script_files_and_entry_points(tmp_path: Path) -> None:
    folder = tmp_path / "custom"
    folder.mkdir()
    (folder / "helper.py").write_text("VALUE = 42\n")
    (folder / "run.py").write_text("from . import helper\n\nasync def handler(msg):\n    return helper.VALUE\n")
    binding = {**QUEUE_BINDING, "queueName": "plain-name"}
    (folder / "function.json").write_text(
        json.dumps({"scriptFile": "run.py", "entryPoint": "handler", "bindings": [binding]})
    )
    (tmp_path / "host.json").write_text('{"version": "2.0"}')
    [function] = load_functions(tmp_path, {"Conn": CONNECTION})
    assert function.call(object()) == 42  # async entry points run to completion


@pytest.mark.parametrize(
    ("bindings", "code", "settings", "error", "message"),
    [
        ([{**QUEUE_BINDING, "type": "blobTrigger"}], None, {"Q": "jobs-1", "Conn": "x"}, FunctionLoadError,
         "blobTrigger"),
        ([QUEUE_BINDING], None, {"Conn": "x"}, ConfigError, "'Q' is not set"),
        ([QUEUE_BINDING], None, {"Q": "jobs-1"}, ConfigError, "'Conn'"),
        ([QUEUE_BINDING], None, {"Q": "Bad_Name", "Conn": "x"}, ConfigError, "invalid queue name"),
        ([QUEUE_BINDING], None, {"Q": "a" * 60, "Conn": "x"}, ConfigError, "poison"),
        ([{**QUEUE_BINDING, "name": "message"}], None, {"Q": "jobs-1", "Conn": "x"}, FunctionLoadError, "parameters"),
        ([{"name": "msg", "type": "timerTrigger", "schedule": "0 */5 * * *"}], None, {}, ScheduleError, "6"),
        ([{"name": "msg", "type": "timerTrigger", "schedule": "%S%"}], None, {}, ConfigError, "'S' is not set"),
        ([{"name": "msg", "type": "timerTrigger"}], None, {}, FunctionLoadError, "schedule"),
        ([QUEUE_BINDING, {"name": "out", "type": "queue", "direction": "out"}], None, {"Q": "jobs-1", "Conn": "x"},
         FunctionLoadError, "direction"),
        ([QUEUE_BINDING], "import not_a_module_anywhere\n", {"Q": "jobs-1", "Conn": "x"}, FunctionLoadError, "import"),
        ([QUEUE_BINDING], "def other(msg):\n    pass\n", {"Q": "jobs-1", "Conn": "x"}, FunctionLoadError, "'main'"),
    ],
)  # fmt: skip
def test_clear_errors(
    tmp_path: Path, bindings: list[dict], code: str | None, settings: dict, error: type, message: str
) -> None:
    make_function(tmp_path, "broken", bindings, *(() if code is None else (code,)))
    with pytest.raises(error, match=message) as raised:
        load_functions(tmp_path, settings)
    assert "broken" in str(raised.value)


def test_host_start_reports_errors_and_restores_the_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("FUNCHOST_LOADER_PROBE", raising=False)
    make_function(tmp_path, "broken", [{**QUEUE_BINDING, "type": "httpTrigger"}])
    host = FunctionHost(tmp_path, {"FUNCHOST_LOADER_PROBE": "1", "Q": "jobs-1", "Conn": "x"})
    with pytest.raises(FunctionLoadError, match="httpTrigger"):
        host.start()
    assert "FUNCHOST_LOADER_PROBE" not in os.environ
    with pytest.raises(ConfigError, match=r"host\.json"):
        FunctionHost(tmp_path / "nowhere", {}).start()
