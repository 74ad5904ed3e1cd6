"""funchost: a small local Azure Functions host (Python v1 model) that runs a function app against Azurite.

The real host (Core Tools) cannot be installed here. This one loads each `<function>/function.json`,
runs timerTrigger and queueTrigger functions with the real host's semantics (schedules, singleton
timers, Base64 messages, retries, poison queues, visibility renewal) and can run as several
processes on one storage account, like scaled-out instances. Modules: ncrontab (schedules), config
(settings, host.json), loader (indexing), timers, queues, host (FunctionHost), process (HostProcess).
"""

from .config import HostConfig, QueuesOptions, load_settings, parse_timespan
from .errors import ConfigError, FuncHostError, FunctionLoadError, ScheduleError
from .host import FunctionHost
from .loader import Function, QueueTrigger, TimerTrigger, load_functions
from .ncrontab import NCrontab
from .process import HostProcess

__all__ = [
    "ConfigError",
    "FuncHostError",
    "Function",
    "FunctionHost",
    "FunctionLoadError",
    "HostConfig",
    "HostProcess",
    "NCrontab",
    "QueueTrigger",
    "QueuesOptions",
    "ScheduleError",
    "TimerTrigger",
    "load_functions",
    "load_settings",
    "parse_timespan",
]
