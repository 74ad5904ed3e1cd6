"""HTTP plumbing shared by every outbound client (Registry, VMS): sessions, timeouts, retries."""
