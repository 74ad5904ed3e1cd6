"""renew_locks and poll_jobs: the lock records, polling, renewal, the agent's pause and the sweep."""
