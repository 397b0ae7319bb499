"""Failure on purpose: a TCP fault proxy with Toxiproxy's toxics and API, in-process or served.

    async with FaultProxy(port=None) as faults:
        proxy = await faults.create("payments", "127.0.0.1:0", "127.0.0.1:9000")
        proxy.add_toxic({"type": "latency", "attributes": {"latency": 300}})
        ...  # connect to proxy.listen

``redline proxy`` serves the same on 127.0.0.1:8474 for Toxiproxy's clients.
"""

from ._errors import FaultError as FaultError
from ._proxy import Proxy as Proxy
from ._proxy import ProxyError as ProxyError
from ._schedule import FaultSchedule as FaultSchedule
from ._schedule import LocalProxies as LocalProxies
from ._schedule import ProxyControl as ProxyControl
from ._schedule import RemoteProxies as RemoteProxies
from ._schedule import ScheduledFault as ScheduledFault
from ._server import API_VERSION as API_VERSION
from ._server import FaultProxy as FaultProxy
from ._toxics import STREAMS as STREAMS
from ._toxics import TOXIC_TYPES as TOXIC_TYPES
from ._toxics import Toxic as Toxic
from ._toxics import ToxicError as ToxicError

__all__ = [
    "API_VERSION",
    "STREAMS",
    "TOXIC_TYPES",
    "FaultError",
    "FaultProxy",
    "FaultSchedule",
    "LocalProxies",
    "Proxy",
    "ProxyControl",
    "ProxyError",
    "RemoteProxies",
    "ScheduledFault",
    "Toxic",
    "ToxicError",
]
