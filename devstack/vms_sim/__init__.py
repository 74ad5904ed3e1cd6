"""A simulator of three cloud VMS APIs (Eagle Eye Networks v3, Rhombus, Verkada) over real HTTP on loopback.

One engine (cameras, recordings, deterministic video streams, clock, faults, request log) per
vendor profile; each profile runs its own servers and a /_sim control API.
"""

from .config import VmsConfig
from .control import VmsSimulatorControl
from .een import EenSimulator
from .rhombus import RhombusSimulator
from .stack import EenEndpoints, RhombusEndpoints, VerkadaEndpoints, VmsSimulators
from .streams import stream_sha256, stream_size
from .verkada import VerkadaSimulator

__all__ = [
    "EenEndpoints",
    "EenSimulator",
    "RhombusEndpoints",
    "RhombusSimulator",
    "VerkadaEndpoints",
    "VerkadaSimulator",
    "VmsConfig",
    "VmsSimulatorControl",
    "VmsSimulators",
    "stream_sha256",
    "stream_size",
]
