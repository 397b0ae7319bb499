"""``python -m redline.demo shop|payments|priority --port N ...``: serve a demo service."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import uvicorn

from redline.observe.asgi import RuntimeMetrics

from ._data import generate
from ._priority import priority_app
from ._shop import STRATEGIES, Payments, Shop, shop_app


def main(argv: list[str] | None = None) -> int:
    """Serve the shop or payments on loopback until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m redline.demo")
    parser.add_argument("service", choices=["shop", "payments", "priority"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--payments", default="http://127.0.0.1:8001", help="payments' URL")
    parser.add_argument("--strategies", default="", help=f"comma-separated: {','.join(STRATEGIES)}")
    parser.add_argument("--workers", type=int, default=16, help="the shop's worker pool")
    parser.add_argument("--db", type=Path, help="the shop's SQLite file (default: a new one)")
    parser.add_argument("--otlp", help="continue redline's traces, exporting spans here")
    parser.add_argument("--capacity", type=int, default=8, help="priority: requests at once")
    parser.add_argument("--work-ms", type=float, default=20.0, help="priority: ms per request")
    args = parser.parse_args(argv)
    app: Any
    if args.service == "priority":
        app = priority_app(capacity=args.capacity, work_ms=args.work_ms)
    elif args.service == "payments":
        app = Payments()
        if args.otlp:
            app = RuntimeMetrics(app, otlp=args.otlp, service="payments")
    else:
        strategies = [s for s in args.strategies.split(",") if s]
        db = args.db or Path(tempfile.mkdtemp(prefix="redline-demo-")) / "shop.db"
        if not db.exists():
            generate(db)
        try:
            app = shop_app(
                Shop(db, args.payments, strategies=strategies, workers=args.workers),
                otlp=args.otlp,
            )
        except ValueError as exc:
            print(f"--strategies: {exc}", file=sys.stderr)
            return 2
    uvicorn.run(app, host=args.host, port=args.port, lifespan="on", log_level="warning",
                access_log=False)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
