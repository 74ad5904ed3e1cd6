"""The agent: what poll_jobs, process_job and renew_locks do, independent of the Functions host.

    locks/    poll_jobs and renew_locks: lock records, polling, renewal, the pause, the sweep
    work/     process_job: plans, work items and the ledger, delivery, completion, the end of a job
    jobs/     one module per job type behind one interface, registered in jobs/catalog.py
    wiring/   what every run needs (services), built once per worker process (runtime)
    states.py every state, kind and outcome as a type; errors.py why a run stops early

docs/architecture.md draws the whole map.
"""
