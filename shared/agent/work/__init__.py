"""process_job: plans, work items and the ledger, delivery of files, completion and ending of jobs."""
