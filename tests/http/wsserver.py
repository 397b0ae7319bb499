"""A WebSocket echo server on the websockets library (another implementation than the
client's own use of it: its asyncio server), for the WebSocket tests and benchmark.

    python wsserver.py PORT

Paths: ``/echo`` sends every message back; ``/json`` answers ``{"id": <the message's
id>, "ok": true}`` after pushing one message of its own; ``/slow`` echoes after 300 ms;
``/close`` closes the connection (code 1011) on the first message; ``/reject`` refuses
the upgrade with 403. Prints ``ready``, serves until killed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Response


async def handler(ws: ServerConnection) -> None:
    path = ws.request.path if ws.request is not None else "/"
    async for message in ws:
        if path == "/json":
            await ws.send(json.dumps({"push": True}))
            await ws.send(json.dumps({"id": json.loads(message)["id"], "ok": True}))
        elif path == "/slow":
            await asyncio.sleep(0.3)
            await ws.send(message)
        elif path == "/close":
            await ws.close(1011, "going away")
            return
        else:
            await ws.send(message)


def reject(connection: ServerConnection, request: Any) -> Response | None:
    if request.path == "/reject":
        return Response(403, "Forbidden", Headers(), b"no")
    return None


async def main(port: int) -> None:
    async with serve(handler, "127.0.0.1", port, process_request=reject, compression=None,
                     max_queue=None, ping_interval=None):  # fmt: skip
        print("ready", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    logging.getLogger("websockets").setLevel(logging.CRITICAL)  # clients that just hang up
    asyncio.run(main(int(sys.argv[1])))
