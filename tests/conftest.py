"""Shared fixtures: the local stack (Azurite + Registry simulator) is started once per test session."""

from __future__ import annotations

import pytest

from devstack.stack import LocalStack


@pytest.fixture(scope="session")
def stack():
    """Real Azurite and the real Registry simulator on free loopback ports, in memory, nothing on disk."""
    with LocalStack(state_dir=None) as running:
        yield running
