"""The worker's pipe to the coordinator survives messages larger than the socket buffer."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time

import uvloop

from redline.engine._worker import watch_pipe


def test_large_message_through_a_watched_pipe_arrives_whole_when_the_reader_is_slow() -> None:
    # uvloop makes watched descriptors non-blocking; without watch_pipe restoring blocking
    # mode, this send fails half-written (BlockingIOError) and the reader sees garbage.
    ours, theirs = multiprocessing.Pipe()
    payload = ("interval", bytes(range(256)) * 16384)  # 4 MiB, far above the buffer
    received: list[object] = []

    def slow_reader() -> None:
        time.sleep(0.2)  # let the writer fill the socket buffer first
        try:
            received.append(theirs.recv())
        except Exception as exc:  # noqa: BLE001  (a torn message is the failure shown)
            received.append(exc)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        watch_pipe(loop, ours, lambda: None)
        try:
            ours.send(payload)
        finally:
            loop.remove_reader(ours.fileno())
            ours.close()  # a torn message then ends in EOF instead of a reader waiting forever

    reader = threading.Thread(target=slow_reader, daemon=True)
    reader.start()
    uvloop.run(main())
    reader.join(timeout=30)
    assert received == [payload]
