"""The agent: what poll_jobs, process_job and renew_locks do, independent of the Functions host."""
