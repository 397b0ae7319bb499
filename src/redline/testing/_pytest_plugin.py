"""The ``redline_server`` pytest fixture (registered through the ``pytest11`` entry point)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

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
