"""A service with a fixed capacity, with or without admission control in front of it.

Two workers of 10 ms each: 200 requests a second at most. What comes faster queues for a
worker. With ``LIMITED=1`` the AdaptiveLimiter middleware admits only what the service
can take in flight and answers the rest at once with 503 and Retry-After.

    LIMITED=1 uvicorn overload_app:app --app-dir examples/services --port 8000

Used by tests/integration/test_overload.py and benchmarks/bench_overload.py.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from redline.resilience import AdaptiveLimiter, AdmissionMiddleware

WORKERS = 2
WORK_S = 0.010
CAPACITY = WORKERS / WORK_S  # requests a second

workers = asyncio.Semaphore(WORKERS)


async def service(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Wait for a worker, work 10 ms, answer 200."""
    async with workers:
        await asyncio.sleep(WORK_S)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"2")]})  # fmt: skip
    await send({"type": "http.response.body", "body": b"ok"})


app: Any = service
if os.environ.get("LIMITED") == "1":
    app = AdmissionMiddleware(
        service, limiter=AdaptiveLimiter(algorithm="gradient2", initial=2, minimum=1, maximum=64)
    )
