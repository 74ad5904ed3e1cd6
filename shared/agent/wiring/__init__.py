"""The agent's long-lived parts, built once per worker process from the settings."""
