"""The Clearance Agent's logic. The function folders (poll_jobs, process_job, renew_locks) stay thin."""

from shared.redact import install_log_scrubbing

# Safe by default: whatever the entry point, libraries that log request URLs never log a SAS signature.
install_log_scrubbing()
