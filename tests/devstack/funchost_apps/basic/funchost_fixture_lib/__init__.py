"""Shared code of the fixture app, imported absolutely (`from funchost_fixture_lib.record import ...`)."""
