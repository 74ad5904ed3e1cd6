"""Indexes a Python v1 function app: one folder per function, each with function.json and a script.

The function's script is imported as `<namespace>.<folder>` (the real worker uses `__app__.<folder>`),
with the app root on sys.path so `from shared.x import y` works and `from . import z` works inside a
function folder. Binding names must be the entry point's parameter names.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import inspect
import json
import re
import sys
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import resolve
from .errors import ConfigError, FunctionLoadError, ScheduleError
from .ncrontab import NCrontab

DEFAULT_CONNECTION = "AzureWebJobsStorage"
_QUEUE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$")
_POISON_SUFFIX = "-poison"


@dataclass(frozen=True)
class TimerTrigger:
    parameter: str
    schedule: NCrontab
    use_monitor: bool
    run_on_startup: bool


@dataclass(frozen=True)
class QueueTrigger:
    parameter: str
    queue_name: str
    connection: str  # the setting's name, for messages
    connection_string: str  # its value: a secret, never log it

    def __repr__(self) -> str:  # keeps the connection string out of reprs and tracebacks
        return f"QueueTrigger({self.parameter!r}, queue_name={self.queue_name!r}, connection={self.connection!r})"

    @property
    def poison_queue_name(self) -> str:
        return self.queue_name + _POISON_SUFFIX


Trigger = TimerTrigger | QueueTrigger


@dataclass(frozen=True)
class Function:
    name: str
    directory: Path
    entry_point: Callable[..., Any]
    trigger: Trigger

    def call(self, argument: Any) -> Any:
        """Calls the entry point with its trigger argument; `async def` entry points run to completion."""
        result = self.entry_point(**{self.trigger.parameter: argument})
        if inspect.iscoroutine(result):
            result = asyncio.run(result)
        return result


def load_functions(app_dir: Path, settings: Mapping[str, str]) -> list[Function]:
    """Every enabled function of the app, sorted by name; raises FuncHostError subclasses with clear messages."""
    app_dir = app_dir.resolve()
    if not app_dir.is_dir():
        raise ConfigError(f"function app directory {app_dir} does not exist")
    functions = []
    for folder in sorted(path for path in app_dir.iterdir() if (path / "function.json").is_file()):
        if settings.get(f"AzureWebJobs.{folder.name}.Disabled", "").lower() in ("true", "1"):
            continue
        function = _load_function(app_dir, folder, settings)
        if function is not None:
            functions.append(function)
    return functions


def _load_function(app_dir: Path, folder: Path, settings: Mapping[str, str]) -> Function | None:
    name = folder.name
    try:
        document = json.loads((folder / "function.json").read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as error:
        raise FunctionLoadError(f"function {name!r}: cannot read function.json: {error}") from error
    if not isinstance(document, dict) or not isinstance(document.get("bindings"), list):
        raise FunctionLoadError(f"function {name!r}: function.json needs a 'bindings' list")
    if document.get("disabled") is True:
        return None
    bindings: list[dict[str, Any]] = document["bindings"]
    triggers = [_parse_trigger(name, binding, settings) for binding in bindings]
    if len(triggers) != 1:
        raise FunctionLoadError(f"function {name!r}: funchost supports exactly one binding (the trigger)")
    trigger = triggers[0]
    entry_point = _import_entry_point(app_dir, folder, document)
    _check_parameters(name, entry_point, trigger.parameter)
    return Function(name=name, directory=folder, entry_point=entry_point, trigger=trigger)


def _parse_trigger(function: str, binding: Any, settings: Mapping[str, str]) -> Trigger:
    if not isinstance(binding, dict) or not isinstance(binding.get("name"), str) or not binding.get("type"):
        raise FunctionLoadError(f"function {function!r}: each binding needs a 'name' and a 'type'")
    kind, parameter = str(binding["type"]), binding["name"]
    where = f"function {function!r}, binding {parameter!r}"
    if binding.get("direction", "in") != "in":
        raise FunctionLoadError(
            f"{where}: only 'in' triggers are supported, not direction {binding.get('direction')!r}"
        )
    if kind.lower() == "timertrigger":
        schedule_text = binding.get("schedule")
        if not isinstance(schedule_text, str):
            raise FunctionLoadError(f"{where}: a timerTrigger needs a 'schedule'")
        try:
            schedule = NCrontab.parse(resolve(schedule_text, settings, where))
        except ScheduleError as error:
            raise ScheduleError(f"{where}: {error}") from None
        return TimerTrigger(
            parameter=parameter,
            schedule=schedule,
            use_monitor=bool(binding.get("useMonitor", True)),
            run_on_startup=bool(binding.get("runOnStartup", False)),
        )
    if kind.lower() == "queuetrigger":
        queue_text = binding.get("queueName")
        if not isinstance(queue_text, str):
            raise FunctionLoadError(f"{where}: a queueTrigger needs a 'queueName'")
        queue_name = resolve(queue_text, settings, where)
        if not _QUEUE_NAME.match(queue_name) or len(queue_name) + len(_POISON_SUFFIX) > 63:
            raise ConfigError(
                f"{where}: invalid queue name {queue_name!r} (3-56 lowercase letters, digits and single hyphens, "
                "so that its -poison queue fits in 63 characters)"
            )
        connection = str(binding.get("connection") or DEFAULT_CONNECTION)
        return QueueTrigger(
            parameter=parameter,
            queue_name=queue_name,
            connection=connection,
            connection_string=connection_string(settings, connection, where),
        )
    raise FunctionLoadError(f"{where}: binding type {kind!r} is not supported by funchost (timerTrigger, queueTrigger)")


def connection_string(settings: Mapping[str, str], connection: str, where: str) -> str:
    """The connection string named by a binding's `connection` (also looked up as AzureWebJobs<name>)."""
    for key in (connection, f"AzureWebJobs{connection}"):
        value = settings.get(key)
        if value:
            return value
    if any(key.startswith(f"{connection}__") for key in settings):
        raise ConfigError(
            f"{where}: identity-based connection {connection!r} is not supported; set a connection string"
        )
    raise ConfigError(f"app setting {connection!r} (a storage connection string) is not set (needed by {where})")


def _namespace(app_dir: Path) -> str:
    """A package standing for the app root: `__app__` like the real worker, unless another app took it."""
    existing = sys.modules.get("__app__")
    if existing is None or list(getattr(existing, "__path__", [])) == [str(app_dir)]:
        name = "__app__"
    else:
        name = "__app_" + hashlib.sha256(str(app_dir).encode()).hexdigest()[:10] + "__"
    if name not in sys.modules:
        package = types.ModuleType(name)
        package.__path__ = [str(app_dir)]
        sys.modules[name] = package
    return name


def _import_entry_point(app_dir: Path, folder: Path, document: Mapping[str, Any]) -> Callable[..., Any]:
    name = folder.name
    script = folder / str(document.get("scriptFile") or "__init__.py")
    if not script.is_file() or script.suffix != ".py" or script.resolve().parent != folder.resolve():
        raise FunctionLoadError(f"function {name!r}: scriptFile {script.name!r} must be a .py file in {folder}")
    if str(app_dir) not in sys.path:
        sys.path.insert(0, str(app_dir))
    module_name = f"{_namespace(app_dir)}.{name}"
    if script.name != "__init__.py":
        module_name += "." + script.stem
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        raise FunctionLoadError(f"function {name!r}: importing {script} failed: {error!r}") from error
    entry_name = str(document.get("entryPoint") or "main")
    entry_point = getattr(module, entry_name, None)
    if not callable(entry_point):
        raise FunctionLoadError(f"function {name!r}: {script.name} defines no function {entry_name!r}")
    return entry_point


def _check_parameters(name: str, entry_point: Callable[..., Any], binding_name: str) -> None:
    parameters = inspect.signature(entry_point).parameters
    required = [
        parameter.name
        for parameter in parameters.values()
        if parameter.default is inspect.Parameter.empty
        and parameter.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]
    if binding_name not in parameters or any(parameter != binding_name for parameter in required):
        raise FunctionLoadError(
            f"function {name!r}: the entry point's parameters {list(parameters)} must match the binding names "
            f"in function.json [{binding_name!r}]"
        )
