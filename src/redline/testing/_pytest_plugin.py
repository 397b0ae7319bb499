"""``redline_server`` and ``redline_faults`` pytest fixtures (the ``pytest11`` entry point)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from redline.faults import FaultProxy, Proxy

from ._server import TestServer


@pytest.fixture
def redline_server() -> Iterator[Callable[..., TestServer]]:
    """Start test servers on loopback; each is stopped when the test ends.

    Call it with :class:`~redline.testing.TestServer`'s arguments::

        def test_fast(redline_server):
            server = redline_server(Behaviour(latency=0.01))
            ...  # load server.url; assert on server.requests_total
    """
    with contextlib.ExitStack() as stack:

        def start(*args: Any, **kwargs: Any) -> TestServer:
            return stack.enter_context(TestServer(*args, **kwargs).running())

        yield start


@pytest.fixture
def redline_faults() -> Iterator[Callable[..., Proxy]]:
    """Put fault proxies in front of upstreams; all are stopped when the test ends.

    Call it with a name and the upstream's ``host:port``; add toxics to what it returns
    (they act from the next chunk on)::

        def test_slow_payments(redline_faults, redline_server):
            payments = redline_server()
            proxy = redline_faults("payments", f"127.0.0.1:{payments.port}")
            proxy.add_toxic({"type": "latency", "attributes": {"latency": 300}})
            ...  # point the code under test at proxy.listen; proxy.disable() takes it down
    """
    faults = FaultProxy(port=None)
    with faults.running():

        def create(
            name: str, upstream: str, *, listen: str = "127.0.0.1:0", http: bool = False
        ) -> Proxy:
            return faults.call(faults.create(name, listen, upstream, http=http))

        yield create
