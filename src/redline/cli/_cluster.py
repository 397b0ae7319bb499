"""``--cluster``: run, find, ab and experiment generate their load on a Dask cluster."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator

from redline.engine import LazyCluster, using_cluster

__all__ = ["add_cluster_option", "cluster_for"]


def add_cluster_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--cluster`` (and its wait) to a command that runs load."""
    parser.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="generate the load on a Dask cluster: tcp://scheduler:8786, or local:N for N "
        "Dask workers on this machine (needs redline[cluster]; see docs/cluster.md)",
    )
    parser.add_argument(
        "--cluster-wait",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long to wait for the scheduler and a first worker (default 10)",
    )


@contextlib.contextmanager
def cluster_for(args: argparse.Namespace) -> Iterator[None]:
    """Send the command's runs to ``--cluster``, when given.

    The connection is made at the first run (after the plan was read and checked) and
    kept for the command's other runs (``find``'s steps, ``ab``'s rounds); a scheduler
    that cannot be reached fails that first run before any load is sent.
    """
    address = getattr(args, "cluster", None)
    if not address:
        yield
        return
    cluster = LazyCluster(address, wait_s=args.cluster_wait)
    try:
        with using_cluster(cluster):
            yield
    finally:
        cluster.close()
