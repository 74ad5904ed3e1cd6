"""The errors the host raises for a function app it cannot run (all are FuncHostError)."""

from __future__ import annotations


class FuncHostError(Exception):
    """Base class: the app, its settings or its host.json cannot be run by funchost."""


class ConfigError(FuncHostError):
    """host.json, an app setting or a local.settings.json file is missing or invalid."""


class ScheduleError(ConfigError, ValueError):
    """An NCRONTAB schedule cannot be parsed or never fires."""


class FunctionLoadError(FuncHostError):
    """A function folder cannot be loaded: bad function.json, unsupported binding, import error."""
