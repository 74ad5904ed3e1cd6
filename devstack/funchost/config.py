"""App settings (a dict and/or a local.settings.json file) and the host.json options the host honours."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError

# TimeSpan as host.json writes it: [d.]hh:mm[:ss[.fffffff]]
_TIMESPAN = re.compile(r"^(?:(?P<days>\d+)\.)?(?P<hours>\d+):(?P<minutes>\d+)(?::(?P<seconds>\d+(?:\.\d+)?))?$")
_SETTING_REFERENCE = re.compile(r"%([^%]+)%")

DEFAULT_FUNCTION_TIMEOUT = 30 * 60.0  # Flex Consumption's default


def parse_timespan(text: str, what: str = "value") -> float:
    """Seconds in a .NET TimeSpan string such as "00:01:00" or "1.02:00:00"."""
    match = _TIMESPAN.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ConfigError(f"{what} must be a TimeSpan string such as '00:01:00', not {text!r}")
    parts = match.groupdict(default="0")
    return (
        int(parts["days"]) * 86400 + int(parts["hours"]) * 3600 + int(parts["minutes"]) * 60 + float(parts["seconds"])
    )


@dataclass(frozen=True)
class QueuesOptions:
    """host.json `extensions.queues`, with the real host's defaults."""

    batch_size: int = 16
    new_batch_threshold: int = 8
    max_dequeue_count: int = 5
    visibility_timeout: float = 0.0  # delay before a FAILED message is retried
    max_polling_interval: float = 60.0
    message_encoding: str = "base64"  # or "none"

    @classmethod
    def from_json(cls, section: Mapping[str, Any]) -> QueuesOptions:
        def integer(key: str, default: int, low: int, high: int) -> int:
            value = section.get(key, default)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise ConfigError(f"host.json extensions.queues.{key} must be an integer {low}..{high}, not {value!r}")
            return value

        batch_size = integer("batchSize", 16, 1, 32)
        encoding = str(section.get("messageEncoding", "base64")).lower()
        if encoding not in ("base64", "none"):
            raise ConfigError(
                f"host.json extensions.queues.messageEncoding must be 'base64' or 'none', not {encoding!r}"
            )
        max_polling = parse_timespan(
            section.get("maxPollingInterval", "00:01:00"), "host.json extensions.queues.maxPollingInterval"
        )
        if max_polling < 0.1:
            raise ConfigError("host.json extensions.queues.maxPollingInterval must be at least 100 ms")
        return cls(
            batch_size=batch_size,
            new_batch_threshold=integer("newBatchThreshold", batch_size // 2, 0, 1000),
            max_dequeue_count=integer("maxDequeueCount", 5, 1, 1_000_000),
            visibility_timeout=parse_timespan(
                section.get("visibilityTimeout", "00:00:00"), "host.json extensions.queues.visibilityTimeout"
            ),
            max_polling_interval=max_polling,
            message_encoding=encoding,
        )


THREAD_COUNT_SETTING = "PYTHON_THREADPOOL_THREAD_COUNT"
# This app's timer functions (poll_jobs, renew_locks): each gets a worker thread of its own in a deployment.
APP_TIMER_FUNCTIONS = 2


def worker_default_threads() -> int:
    """The Python worker's thread pool without PYTHON_THREADPOOL_THREAD_COUNT: ThreadPoolExecutor's default
    on Python 3.8+, min(32, CPUs + 4) (6 on a 2-core instance)."""
    return min(32, (os.cpu_count() or 1) + 4)


def worker_threads(environ: Mapping[str, str]) -> int:
    """Threads the Python worker runs synchronous functions on: PYTHON_THREADPOOL_THREAD_COUNT when it is a
    positive integer, else the default (the worker, too, ignores an invalid value with a warning)."""
    text = environ.get(THREAD_COUNT_SETTING, "").strip()
    if text.isdigit() and int(text) >= 1:
        return int(text)
    return worker_default_threads()


def deployed_worker_threads(queues: QueuesOptions, timer_functions: int = APP_TIMER_FUNCTIONS) -> int:
    """PYTHON_THREADPOOL_THREAD_COUNT as infra/bicep/modules/app.bicep sets it: a thread for every queue
    message the host may hold at once (batchSize + newBatchThreshold) and one per timer function."""
    return queues.batch_size + queues.new_batch_threshold + timer_functions


HOST_OVERRIDE_PREFIX = "AzureFunctionsJobHost__"


def apply_overrides(document: dict[str, Any], environ: Mapping[str, str]) -> None:
    """`AzureFunctionsJobHost__extensions__queues__batchSize=1` sets host.json extensions.queues.batchSize
    (names matched case-insensitively, as the host's configuration does)."""
    for name, value in environ.items():
        if not name.startswith(HOST_OVERRIDE_PREFIX):
            continue
        *parents, leaf = name[len(HOST_OVERRIDE_PREFIX) :].split("__")
        node = document
        for part in parents:
            key = next((k for k in node if k.lower() == part.lower()), part)
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {}
            node = child
        key = next((k for k in node if k.lower() == leaf.lower()), leaf)
        node[key] = int(value) if value.strip().lstrip("-").isdigit() else value


@dataclass(frozen=True)
class HostConfig:
    """What funchost reads from host.json."""

    queues: QueuesOptions = QueuesOptions()
    function_timeout: float | None = DEFAULT_FUNCTION_TIMEOUT  # None: unbounded ("-1")

    @classmethod
    def load(cls, app_dir: Path, environ: Mapping[str, str] | None = None) -> HostConfig:
        """host.json, with `AzureFunctionsJobHost__a__b` app settings overriding `a.b` as the real host does."""
        path = app_dir / "host.json"
        if not path.is_file():
            raise ConfigError(f"{path} not found: a function app needs a host.json at its root")
        try:
            document = json.loads(path.read_text(encoding="utf-8-sig"))
        except (OSError, ValueError) as error:
            raise ConfigError(f"cannot read {path}: {error}") from error
        if not isinstance(document, dict) or document.get("version") != "2.0":
            raise ConfigError(f'{path} must be a JSON object with "version": "2.0"')
        apply_overrides(document, os.environ if environ is None else environ)
        timeout_text = document.get("functionTimeout")
        timeout: float | None = DEFAULT_FUNCTION_TIMEOUT
        if timeout_text is not None:
            timeout = None if str(timeout_text).strip() == "-1" else parse_timespan(timeout_text, "functionTimeout")
        queues_section = document.get("extensions", {}).get("queues", {})
        if not isinstance(queues_section, dict):
            raise ConfigError(f"{path}: extensions.queues must be an object")
        return cls(queues=QueuesOptions.from_json(queues_section), function_timeout=timeout)

    def with_max_polling_interval(self, seconds: float | None) -> HostConfig:
        """A copy with maxPollingInterval overridden (tests and demos poll faster)."""
        if seconds is None:
            return self
        return replace(self, queues=replace(self.queues, max_polling_interval=seconds))


def load_settings(settings: Mapping[str, Any] | None = None, settings_file: Path | str | None = None) -> dict[str, str]:
    """App settings: the file's `Values` (local.settings.json shape), then `settings` on top."""
    merged: dict[str, str] = {}
    if settings_file is not None:
        path = Path(settings_file)
        try:
            document = json.loads(path.read_text(encoding="utf-8-sig"))
        except (OSError, ValueError) as error:
            raise ConfigError(f"cannot read the settings file {path}: {error}") from error
        values = document.get("Values") if isinstance(document, dict) else None
        if not isinstance(values, dict):
            raise ConfigError(f'settings file {path} must be a JSON object with a "Values" object')
        merged.update({str(key): _setting_text(value) for key, value in values.items()})
    if settings:
        merged.update({str(key): _setting_text(value) for key, value in settings.items()})
    return merged


def _setting_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def resolve(text: str, settings: Mapping[str, str], where: str) -> str:
    """Replaces each %NAME% in a binding property with the app setting NAME (never logs the value)."""

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in settings:
            raise ConfigError(f"app setting {name!r} is not set (referenced by {where})")
        return settings[name]

    return _SETTING_REFERENCE.sub(lookup, text)
