"""Journeys against `redline testserver --port 8080` (start it in another terminal).

redline run examples/journeys.py
"""

from redline.scenario import Session, scenario

target = "http://127.0.0.1:8080"
load = {"vus": 20, "think": {"min": "100ms", "max": "300ms"}}
duration = "20s"


def setup(session: Session) -> dict[str, str]:
    """Once before the load: what every scenario sees as session.shared."""
    return {"campaign": "autumn"}


@scenario(weight=3)
async def browse(s: Session) -> None:
    """Look at a list, then at a product."""
    r = await s.get("/products", name="list", query={"page": 1})
    s.check("list answered", r.ok)
    await s.get("/products/42", name="product")
    await s.think(0.2, 0.8)


@scenario
async def checkout(s: Session) -> None:
    """Fill a cart and place an order, measured as one group."""
    async with s.group("checkout"):
        await s.post("/cart", json={"sku": "lamp", "campaign": s.shared["campaign"]})
        r = await s.post("/orders", json={}, expect=200)
        s.check("order placed", r.status == 200)
