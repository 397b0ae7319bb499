"""Fixtures of the cluster tests (the processes themselves: dask_procs.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dask_procs import DaskProcesses, dask_processes


@pytest.fixture(scope="module")
def four_workers() -> Iterator[DaskProcesses]:
    """A scheduler and four workers, shared by a module's tests (none kills a worker)."""
    with dask_processes(4) as cluster:
        yield cluster
