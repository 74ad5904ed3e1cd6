"""The job types this agent handles, in one table: adding a job type is one module (base.py says what it
provides) and one line here. The poller asks the Registry for these types only."""

from __future__ import annotations

from collections.abc import Mapping

from shared.agent.jobs.base import JobType
from shared.agent.jobs.discovery import Discovery
from shared.agent.jobs.media import MediaRequest
from shared.agent.jobs.thumbnails import Thumbnail
from shared.agent.states import FileKind, ItemKind

JOB_TYPES: tuple[JobType, ...] = (MediaRequest(), Discovery(), Thumbnail())

BY_NAME: Mapping[str, JobType] = {job_type.name: job_type for job_type in JOB_TYPES}
NAMES: tuple[str, ...] = tuple(BY_NAME)
SMALL_JOB_TYPES: frozenset[str] = frozenset(job_type.name for job_type in JOB_TYPES if job_type.small)
_BY_ITEM: Mapping[ItemKind, JobType] = {job_type.item_kind: job_type for job_type in JOB_TYPES}
_BY_FILE: Mapping[FileKind, JobType] = {job_type.file_kind: job_type for job_type in JOB_TYPES}


def job_type(name: str) -> JobType | None:
    """The job type the Registry calls `name`; None for a type this agent does not handle."""
    return BY_NAME.get(name)


def for_item(kind: ItemKind) -> JobType:
    return _BY_ITEM[kind]


def for_file(kind: FileKind) -> JobType:
    return _BY_FILE[kind]
