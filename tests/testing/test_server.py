from __future__ import annotations

import asyncio
import http.client
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from redline.testing import Behaviour, Latency, TestServer

Server = Callable[..., TestServer]


def get(server: TestServer, path: str = "/") -> tuple[int, bytes, dict[str, str]]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read(), dict(response.getheaders())
    finally:
        conn.close()


def test_counts_requests_exactly_per_path(redline_server: Server) -> None:
    server = redline_server()
    for path in ("/a", "/a", "/b?x=1"):
        assert get(server, path)[0] == 200
    assert server.requests_total == 3
    assert server.responses_total == 3
    assert server.requests_by_path == {"/a": 2, "/b": 1}


def test_routes_pick_the_longest_prefix(redline_server: Server) -> None:
    server = redline_server(
        Behaviour(status=200),
        routes={
            "/api": Behaviour(status=404),
            "/api/v2": Behaviour(status=201, body_size=10, chunked=True),
        },
    )
    assert get(server, "/")[0] == 200
    assert get(server, "/api/x")[0] == 404
    status, body, headers = get(server, "/api/v2/x")
    assert status == 201
    assert len(body) == 10
    assert headers["Transfer-Encoding"] == "chunked"


def test_error_rate_is_seeded_and_reproducible() -> None:
    outcomes = []
    for _ in range(2):
        with TestServer(Behaviour(error_rate=0.5, error_status=502), seed=11).running() as server:
            outcomes.append([get(server)[0] for _ in range(20)])
    assert outcomes[0] == outcomes[1]
    assert set(outcomes[0]) == {200, 502}


def test_hang_never_answers(redline_server: Server) -> None:
    server = redline_server(Behaviour(hang=True))
    with socket.create_connection((server.host, server.port), timeout=0.3) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        with pytest.raises(TimeoutError):
            sock.recv(100)
    assert server.requests_total == 1
    assert server.responses_total == 0


def test_close_mid_response_truncates(redline_server: Server) -> None:
    server = redline_server(Behaviour(close_mid_response=True, body_size=100))
    with pytest.raises(http.client.IncompleteRead):
        get(server)


def test_latency_distributions_sample_in_range() -> None:
    import random

    rng = random.Random(1)
    assert Latency("fixed", 0.01).sample(rng) == 0.01
    assert all(0.1 <= Latency("uniform", low=0.1, high=0.2).sample(rng) <= 0.2 for _ in range(100))
    draws = [Latency("exponential", 0.01).sample(rng) for _ in range(4000)]
    assert sum(draws) / len(draws) == pytest.approx(0.01, rel=0.1)
    draws = sorted(Latency("lognormal", 0.01, sigma=0.5).sample(rng) for _ in range(4001))
    assert draws[2000] == pytest.approx(0.01, rel=0.1)  # the median


def test_stall_rejects_impossible_settings() -> None:
    with pytest.raises(ValueError, match="stall_for"):
        TestServer(stall_every=1.0, stall_for=2.0)


def test_runs_inside_an_event_loop() -> None:
    async def main() -> int:
        async with TestServer(Behaviour(status=204, body_size=0)) as server:
            reader, writer = await asyncio.open_connection(server.host, server.port)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            line = await reader.readline()
            writer.close()
            await writer.wait_closed()
            return int(line.split()[1])

    assert asyncio.run(main()) == 204


def test_workers_serve_that_many_at_once_and_queue_the_rest_in_order(
    redline_server: Server,
) -> None:
    server = redline_server(Behaviour(latency=0.3, workers=1, body_size=0))
    queue = server._route("/")  # the queue's state is the behaviour under test
    finished: list[str] = []

    def fetch(path: str) -> None:
        assert get(server, path)[0] == 200
        finished.append(path)

    threads = [threading.Thread(target=fetch, args=(f"/{i}",)) for i in range(3)]
    for index, thread in enumerate(threads):
        thread.start()
        while server.requests_total < index + 1:  # arrive one after the other
            threading.Event().wait(0.005)
    assert queue.busy == 1
    assert len(queue.waiting) == 2
    for thread in threads:
        thread.join(timeout=10)
    assert finished == ["/0", "/1", "/2"]  # first come, first served
    assert queue.busy == 0
    assert not queue.waiting


def test_the_faults_fixture_puts_a_proxy_in_front_that_toxics_change_from_the_test(
    redline_server: Server, redline_faults: Callable[..., Any]
) -> None:
    target = redline_server()
    proxy = redline_faults("svc", f"127.0.0.1:{target.port}")
    host, _, port = proxy.listen.rpartition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)

    def elapsed() -> float:
        start = time.perf_counter()
        connection.request("GET", "/")
        connection.getresponse().read()
        return time.perf_counter() - start

    assert elapsed() < 0.2
    proxy.add_toxic({"type": "latency", "attributes": {"latency": 250}})
    assert elapsed() >= 0.25  # the live connection, from the test's thread
    proxy.remove_toxic("latency_downstream")
    assert elapsed() < 0.2
    connection.close()
    proxy.disable()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, int(port)), timeout=2)
    proxy.enable()
    assert get_through(host, int(port)) == 200


def get_through(host: str, port: int) -> int:
    connection = http.client.HTTPConnection(host, port, timeout=5)
    try:
        connection.request("GET", "/")
        return connection.getresponse().status
    finally:
        connection.close()
