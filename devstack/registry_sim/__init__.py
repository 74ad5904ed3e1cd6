"""A faithful, independent simulator of the Clearance Registry agent service (see
docs/protocol.md §2–§4), with a /_sim control API for tests and demos."""

from .control import SimulatorControl, SimulatorControlError
from .identity import KeyPair, SimulatorIdentity
from .server import SimulatorServer
from .simulator import RegistrySimulator

__all__ = [
    "KeyPair",
    "RegistrySimulator",
    "SimulatorControl",
    "SimulatorControlError",
    "SimulatorIdentity",
    "SimulatorServer",
]
