"""In-memory stand-ins for the storage services and boundaries the engine talks to, for deterministic tests."""
