"""The Clearance Agent's logic. The function folders (poll_jobs, process_job, renew_locks) stay thin."""
