"""Scenarios as code: user journeys as async Python functions.

    from redline.scenario import Session, scenario

    target = "http://127.0.0.1:8080"
    load = {"vus": 20, "think": {"min": "0.5s", "max": "1.5s"}}
    duration = "1m"

    def setup(session):                  # optional, once before the load
        return {"sku": "lamp"}

    @scenario(weight=3)
    async def browse(s: Session) -> None:
        r = await s.get("/products", name="list")
        s.check("listed", r.status == 200)
        async with s.group("product page"):
            await s.get(f"/products/{r.json()['items'][0]['id']}", name="product")
        await s.think(0.5, 1.5)

Run it with ``redline run journeys.py``.
"""

from redline.core import Counter as Counter
from redline.core import Gauge as Gauge
from redline.core import Rate as Rate
from redline.core import Trend as Trend
from redline.engine import Response as Response
from redline.engine import Session as Session
from redline.plan import scenario as scenario

from ._jobs import Jobs as Jobs

__all__ = ["Counter", "Gauge", "Jobs", "Rate", "Response", "Session", "Trend", "scenario"]
