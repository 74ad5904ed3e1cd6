"""A job message becomes a plan of bounded work items — or a cancel, decided before any upload.

How a job is cut into items is its job type's (shared/agent/jobs/): media segments, thumbnail batches,
one discovery item. Here: the job type the Registry named (a type this agent does not handle cancels the
job), its parameters validated (malformed ones cancel it), its draft, and item ids unique to this
planning attempt. Every cancel decision is made here, for the whole job, so a job is never canceled
after a file was delivered.
"""

from __future__ import annotations

from dataclasses import replace

from shared.agent.errors import JobCanceled
from shared.agent.jobs import catalog
from shared.agent.jobs.base import Draft, Planning
from shared.agent.work.ledger import OfferedJob


def draft_plan(job: OfferedJob, plan_id: str, planning: Planning) -> Draft:
    """The job's work items, named `<plan id>-<id>` so that two planning attempts never share a row."""
    job_type = catalog.job_type(job.job_type)
    if job_type is None:
        raise JobCanceled(f"unsupported job type {job.job_type!r}: this agent handles {', '.join(catalog.NAMES)}")
    draft = job_type.plan(job, job_type.parse(job.parameters), planning)
    draft.items = [replace(item, item_id=f"{plan_id}-{item.item_id}") for item in draft.items]
    return draft
