"""The job a line of work belongs to, carried by contextvars so every log record and span can name it.

`job_context(...)` binds the dimensions for the duration of a block; `bind(...)` adds one learnt later in
the same block (an item message names no job type until the lock record is read). Contextvars do not
cross into new threads on their own: `carry_context(fn)` wraps a callable so it runs in a copy of the
caller's context (job dimensions and the OpenTelemetry span alike), which is what the heartbeat thread
and the renewal pool need.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import ParamSpec, TypeVar

from opentelemetry import trace

P = ParamSpec("P")
R = TypeVar("R")

DIMENSIONS = ("job_id", "job_type", "item_id", "vms", "generation")
"""The names every record and span of a job carries (customDimensions in Application Insights)."""

_NONE: Mapping[str, str] = MappingProxyType({})
_job: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar("clearance_job", default=_NONE)
_worker: dict[str, str] = {}


def set_worker_dimensions(**values: str | None) -> None:
    """Dimensions true for every record of this worker process (the configured VMS kind)."""
    _worker.update({k: v for k, v in values.items() if v})


def current_dimensions() -> dict[str, str]:
    """The worker's dimensions overlaid with the current job's."""
    return {**_worker, **_job.get()}


@contextmanager
def job_context(
    *,
    job_id: str | None = None,
    job_type: str | None = None,
    item_id: str | None = None,
    vms: str | None = None,
    generation: str | None = None,
) -> Iterator[None]:
    """Bind a job's dimensions (those given; the others keep their outer value) for the block."""
    given = {"job_id": job_id, "job_type": job_type, "item_id": item_id, "vms": vms, "generation": generation}
    token = _job.set({**_job.get(), **{k: v for k, v in given.items() if v}})
    _stamp_current_span()
    try:
        yield
    finally:
        _job.reset(token)


def bind(**values: str | None) -> None:
    """Add dimensions learnt inside a `job_context` block; they end with that block."""
    unknown = set(values) - set(DIMENSIONS)
    if unknown:
        raise ValueError(f"not a job dimension: {sorted(unknown)}")
    _job.set({**_job.get(), **{k: v for k, v in values.items() if v}})
    _stamp_current_span()


def carry_context(fn: Callable[P, R]) -> Callable[P, R]:
    """`fn` run, on whatever thread calls it, in a copy of the context it was wrapped in.

    Each call gets its own copy, so one wrapper may run on several pool threads at once."""
    captured = contextvars.copy_context()

    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return captured.copy().run(fn, *args, **kwargs)

    return run


def _stamp_current_span() -> None:
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes(current_dimensions())
