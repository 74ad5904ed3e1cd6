"""A simulator of two cloud VMS APIs (Eagle Eye Networks v3 and Rhombus) over real HTTP on loopback.

One engine (cameras, recordings, deterministic video streams, clock, faults, request log) per
vendor profile; each profile runs its own servers and a /_sim control API.
"""

from .config import VmsConfig
from .control import VmsSimulatorControl
from .een import EenSimulator
from .rhombus import RhombusSimulator
from .stack import EenEndpoints, RhombusEndpoints, VmsSimulators
from .streams import stream_sha256, stream_size

__all__ = [
    "EenEndpoints",
    "EenSimulator",
    "RhombusEndpoints",
    "RhombusSimulator",
    "VmsConfig",
    "VmsSimulatorControl",
    "VmsSimulators",
    "stream_sha256",
    "stream_size",
]
