"""Local development stack: Azurite and a Clearance Registry simulator, for tests, demos and benchmarks."""

from .azurite import Azurite, AzuriteError
from .stack import LocalStack

__all__ = ["Azurite", "AzuriteError", "LocalStack"]
