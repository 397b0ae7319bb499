"""Test helpers users need too: a programmable HTTP test server and its pytest fixture."""

from ._server import Behaviour as Behaviour
from ._server import Latency as Latency
from ._server import TestServer as TestServer

__all__ = ["Behaviour", "Latency", "TestServer"]
