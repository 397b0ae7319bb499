"""Each toxic, verified over loopback against the test server through a real proxy."""

from __future__ import annotations

import asyncio
import http.client
import socket
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from redline.faults import FaultProxy, Proxy, Toxic, ToxicError
from redline.testing import Behaviour, TestServer

Server = Callable[..., TestServer]


@pytest.fixture
def faults() -> Iterator[FaultProxy]:
    proxy = FaultProxy(port=None, seed=7)
    with proxy.running():
        yield proxy


def through(faults: FaultProxy, target: TestServer, name: str = "svc") -> Proxy:
    return faults.call(faults.create(name, "127.0.0.1:0", f"127.0.0.1:{target.port}"))


def toxic(faults: FaultProxy, proxy: Proxy, **spec: Any) -> Toxic:
    async def add() -> Toxic:
        return proxy.add_toxic(spec)

    return faults.call(add())


def address(proxy: Proxy) -> tuple[str, int]:
    host, _, port = proxy.listen.rpartition(":")
    return host, int(port)


def timed_get(proxy: Proxy, path: str = "/") -> tuple[float, int, bytes]:
    host, port = address(proxy)
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        start = time.perf_counter()
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        return time.perf_counter() - start, response.status, body
    finally:
        connection.close()


def test_latency_adds_what_it_says_and_never_less(
    redline_server: Server, faults: FaultProxy
) -> None:
    proxy = through(faults, redline_server())
    direct = statistics.median(timed_get(proxy)[0] for _ in range(5))
    toxic(faults, proxy, type="latency", attributes={"latency": 400})
    added = statistics.median(timed_get(proxy)[0] for _ in range(5)) - direct
    # a sleep is never short; a busy 2-core machine may make it late, not by a whole 40%
    assert 0.395 <= added <= 0.400 + 0.160


def test_jitter_stays_within_its_bounds(redline_server: Server, faults: FaultProxy) -> None:
    proxy = through(faults, redline_server())
    toxic(faults, proxy, type="latency", attributes={"latency": 200, "jitter": 100})
    times = [timed_get(proxy)[0] for _ in range(12)]
    assert min(times) >= 0.100 - 0.002, times  # never below latency - jitter
    # above latency + jitter only by what a busy machine adds, as the median shows
    assert statistics.median(times) <= 0.300, times
    assert max(times) <= 0.300 + 0.160, times
    assert max(times) - min(times) > 0.03  # it does vary


def test_upstream_latency_delays_the_request_side(
    redline_server: Server, faults: FaultProxy
) -> None:
    proxy = through(faults, redline_server())
    toxic(faults, proxy, type="latency", stream="upstream", attributes={"latency": 300})
    assert timed_get(proxy)[0] >= 0.3


def test_bandwidth_paces_a_large_body_within_10_percent(
    redline_server: Server, faults: FaultProxy
) -> None:
    proxy = through(faults, redline_server(Behaviour(body_size=1_000_000)))
    toxic(faults, proxy, type="bandwidth", attributes={"rate": 500})  # KB/s
    seconds, status, body = timed_get(proxy)
    assert status == 200
    assert len(body) == 1_000_000
    rate = len(body) / seconds / 1000
    assert 500 * 0.9 <= rate <= 500 * 1.1


def raw_exchange(proxy: Proxy, request: bytes = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") -> bytes:
    """Send ``request`` and read until the proxy closes (raises on a reset)."""
    with socket.create_connection(address(proxy), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def test_limit_data_closes_after_exactly_that_many_bytes(
    redline_server: Server, faults: FaultProxy
) -> None:
    proxy = through(faults, redline_server(Behaviour(body_size=50_000)))
    toxic(faults, proxy, type="limit_data", attributes={"bytes": 1234})
    assert len(raw_exchange(proxy)) == 1234


def test_reset_peer_is_a_connection_reset_for_the_client(
    redline_server: Server, faults: FaultProxy
) -> None:
    proxy = through(faults, redline_server(Behaviour(latency=2.0)))
    toxic(faults, proxy, type="reset_peer", attributes={"timeout": 100})
    with pytest.raises(ConnectionResetError):
        raw_exchange(proxy)


def test_timeout_holds_the_data_then_closes(redline_server: Server, faults: FaultProxy) -> None:
    proxy = through(faults, redline_server())
    toxic(faults, proxy, type="timeout", attributes={"timeout": 300})
    start = time.perf_counter()
    assert raw_exchange(proxy) == b""  # nothing came back, then a close
    assert time.perf_counter() - start >= 0.3


def test_timeout_zero_holds_forever_until_removed(
    redline_server: Server, faults: FaultProxy
) -> None:
    proxy = through(faults, redline_server())
    toxic(faults, proxy, type="timeout", attributes={"timeout": 0})
    with socket.create_connection(address(proxy), timeout=0.5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        with pytest.raises(TimeoutError):
            sock.recv(100)  # held: no answer, no close

    async def remove() -> None:
        proxy.remove_toxic("timeout_downstream")

    faults.call(remove())
    assert timed_get(proxy)[1] == 200  # a new connection passes again


def test_slow_close_delays_the_close(redline_server: Server, faults: FaultProxy) -> None:
    proxy = through(faults, redline_server(Behaviour(close=True)))
    toxic(faults, proxy, type="slow_close", attributes={"delay": 400})
    start = time.perf_counter()
    received = raw_exchange(proxy)
    assert received.startswith(b"HTTP/1.1 200")
    assert time.perf_counter() - start >= 0.4


def test_slicer_cuts_the_stream_into_small_pieces(
    redline_server: Server, faults: FaultProxy
) -> None:
    proxy = through(faults, redline_server(Behaviour(body_size=2000)))
    toxic(faults, proxy, type="slicer",
          attributes={"average_size": 100, "size_variation": 20, "delay": 5000})  # fmt: skip
    with socket.create_connection(address(proxy), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        pieces = []
        while chunk := sock.recv(65536):
            pieces.append(len(chunk))
    assert sum(pieces) > 2000
    # 5 ms apart, slices mostly arrive on their own (a late reader may get a few at once)
    assert len(pieces) >= 10
    assert statistics.median(pieces) <= 120  # a slice: 100 B, give or take 20


def test_toxicity_is_rolled_per_connection_and_seedable(redline_server: Server) -> None:
    target = redline_server()

    def delayed_connections(seed: int) -> list[bool]:
        faults = FaultProxy(port=None, seed=seed)
        with faults.running():
            proxy = through(faults, target)
            toxic(faults, proxy, type="latency", toxicity=0.5, attributes={"latency": 400})
            # a delayed request takes 400 ms or more, a spared one a few: 200 ms apart from
            # both, so a stall of a busy 2-core machine does not flip a roll
            return [timed_get(proxy)[0] >= 0.2 for _ in range(30)]

    first = delayed_connections(11)
    assert 5 <= sum(first) <= 25
    assert delayed_connections(11) == first  # the same seed, the same rolls


def test_toxics_change_live_connections(redline_server: Server, faults: FaultProxy) -> None:
    proxy = through(faults, redline_server())
    host, port = address(proxy)
    connection = http.client.HTTPConnection(host, port, timeout=10)

    def get() -> float:
        start = time.perf_counter()
        connection.request("GET", "/")
        connection.getresponse().read()
        return time.perf_counter() - start

    try:
        assert get() < 0.2
        toxic(faults, proxy, type="latency", attributes={"latency": 250})
        assert get() >= 0.25  # the same, open connection

        async def change() -> None:
            proxy.update_toxic("latency_downstream", {"attributes": {"latency": 500}})

        faults.call(change())
        assert get() >= 0.5

        async def remove() -> None:
            proxy.remove_toxic("latency_downstream")

        faults.call(remove())
        assert get() < 0.2
    finally:
        connection.close()


def test_a_disabled_proxy_refuses_and_drops_then_comes_back(
    redline_server: Server, faults: FaultProxy
) -> None:
    proxy = through(faults, redline_server(Behaviour(latency=1.0)))
    with socket.create_connection(address(proxy), timeout=5) as open_one:
        open_one.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.1)
        faults.call(proxy.set_enabled(False))
        assert open_one.recv(100) == b""  # dropped
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address(proxy), timeout=2)
    faults.call(proxy.set_enabled(True))
    assert timed_get(proxy)[1] == 200


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "earthquake"}, "invalid toxic type 'earthquake'"),
        ({"type": "latency", "stream": "sideways"}, "invalid stream 'sideways'"),
        ({"type": "latency", "toxicity": 2}, "toxicity must be within 0..1"),
        ({"type": "latency", "attributes": {"latncy": 5}}, "latency has no attribute 'latncy'"),
        ({"type": "bandwidth", "attributes": {"rate": -1}}, "bandwidth.rate must be a number"),
    ],
)
def test_bad_toxics_are_refused_naming_what(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ToxicError, match=message.replace("(", r"\(").replace(".", r"\.")):
        Toxic.from_dict(spec)


def test_an_unreachable_upstream_closes_the_client(faults: FaultProxy) -> None:
    proxy = faults.call(faults.create("nowhere", "127.0.0.1:0", "127.0.0.1:1"))
    assert raw_exchange(proxy) == b""


def test_in_process_use_in_asyncio(redline_server: Server) -> None:
    target = redline_server()

    async def main() -> bytes:
        async with FaultProxy(port=None) as faults:
            proxy = await faults.create("svc", "127.0.0.1:0", f"127.0.0.1:{target.port}")
            reader, writer = await asyncio.open_connection(*address(proxy))
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            body = await reader.read()
            writer.close()
            return body

    assert asyncio.run(main()).startswith(b"HTTP/1.1 200")
