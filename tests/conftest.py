"""Shared fixtures: the local stack (Azurite + Registry simulator) is started once per test session.

Every test that uses the `stack` fixture, directly or through other fixtures, is marked `integration`
here, so `pytest -m "not integration"` runs the fast tests alone. A test that starts Azurite or a
simulator itself (without the fixture) carries the marker explicitly.
"""

from __future__ import annotations

import pytest

from devstack.stack import LocalStack


@pytest.fixture(scope="session")
def stack():
    """Real Azurite and the real Registry simulator on free loopback ports, in memory, nothing on disk."""
    with LocalStack(state_dir=None) as running:
        yield running


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    integration = pytest.mark.integration
    for item in items:
        if "stack" in getattr(item, "fixturenames", ()):
            item.add_marker(integration)
