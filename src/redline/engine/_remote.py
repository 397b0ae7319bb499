"""The generator process a Dask worker's relay task starts: ``python -m redline.engine._remote FD``.

It reads its spec (and the Python plan's source, when the plan has one) from the pipe
on descriptor ``FD``, checks that this host reaches the target, and then is an ordinary
worker (``_worker.worker_main``) on that pipe: the relay forwards what it says to the
coordinator. Being a process of its own, its hot loop shares neither the Dask worker's
event loop nor its GIL.
"""

from __future__ import annotations

import contextlib
import socket
import sys
from multiprocessing.connection import Connection

from redline.core import RunError

from ._cluster import materialized
from ._coordinator import check_reachable
from ._worker import worker_main


def main(fd: int) -> None:
    """Run one generator on the pipe at descriptor ``fd``."""
    pipe = Connection(fd)
    spec, source, check_target = pipe.recv()
    try:
        spec = materialized(spec, source)
        if check_target:
            check_reachable(spec.plan)
    except (RunError, OSError) as exc:
        with contextlib.suppress(OSError):
            pipe.send(("error", f"on host {socket.gethostname()}: {exc}"))
        return
    worker_main(spec, pipe)


if __name__ == "__main__":
    main(int(sys.argv[1]))
