"""The demo's services: a shop with real bottlenecks and the payments service it calls.

Run one with ``python -m redline.demo shop --port 8000 --payments http://127.0.0.1:8001
--strategies cache,breaker`` (or ``payments --port 8001``): uvicorn on loopback.
"""

from ._client import JsonClient as JsonClient
from ._client import UpstreamError as UpstreamError
from ._data import generate as generate
from ._priority import PRIORITIES as PRIORITIES
from ._priority import priority_app as priority_app
from ._shop import STRATEGIES as STRATEGIES
from ._shop import Payments as Payments
from ._shop import Shop as Shop
from ._shop import shop_app as shop_app

__all__ = [
    "PRIORITIES",
    "STRATEGIES",
    "JsonClient",
    "Payments",
    "Shop",
    "UpstreamError",
    "generate",
    "priority_app",
    "shop_app",
]
