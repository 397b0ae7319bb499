"""Multi-level caching: an in-process L1 (W-TinyLFU) and Redis as L2.

Loading without stampedes, and invalidation that reaches every process.

Usable in any asyncio service without the rest of redline: the package imports only the
standard library; ``redline.cache.redis`` needs redis-py (the ``redis`` extra)::

    from redline.cache import Cache, LocalCache

    cache = Cache(LocalCache(10_000), ttl_s=60, stale_ttl_s=30, negative_ttl_s=5)

    @cache.cached(key="product:{product_id}", tags=["products"])
    async def product(product_id: int) -> dict: ...
"""

from ._cache import Cache as Cache
from ._cache import CacheStatistics as CacheStatistics
from ._local import POLICIES as POLICIES
from ._local import LocalCache as LocalCache
from ._local import default_weigher as default_weigher
from ._serial import JSON as JSON
from ._serial import PICKLE as PICKLE
from ._serial import Serializer as Serializer
from ._serial import msgpack_serializer as msgpack_serializer
from ._serial import serializer as serializer
from ._sketch import FrequencySketch as FrequencySketch

__all__ = [
    "JSON",
    "PICKLE",
    "POLICIES",
    "Cache",
    "CacheStatistics",
    "FrequencySketch",
    "LocalCache",
    "Serializer",
    "default_weigher",
    "msgpack_serializer",
    "serializer",
]
