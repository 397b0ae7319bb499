"""HTTP-level toxics: answering for the upstream, slowing a path, headers, cut bodies."""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from redline.faults import FaultProxy, Proxy, Toxic, ToxicError
from redline.testing import Behaviour, TestServer

Server = Callable[..., TestServer]


@pytest.fixture
def faults() -> Iterator[FaultProxy]:
    proxy = FaultProxy(port=None, seed=5)
    with proxy.running():
        yield proxy


def http_proxy(faults: FaultProxy, target: TestServer) -> Proxy:
    upstream = f"127.0.0.1:{target.port}"
    return faults.call(faults.create("web", "127.0.0.1:0", upstream, http=True))


def toxic(faults: FaultProxy, proxy: Proxy, **spec: Any) -> None:
    async def add() -> None:
        proxy.add_toxic(spec)

    faults.call(add())


def session(proxy: Proxy) -> http.client.HTTPConnection:
    host, _, port = proxy.listen.rpartition(":")
    return http.client.HTTPConnection(host, int(port), timeout=10)


def test_status_injection_answers_for_the_upstream_at_its_rate(
    redline_server: Server, faults: FaultProxy
) -> None:
    target = redline_server()
    proxy = http_proxy(faults, target)
    toxic(faults, proxy, type="http_status", attributes={"status": 503, "rate": 0.3})
    connection = session(proxy)
    statuses = []
    for _ in range(200):  # one keep-alive connection: the rate is per request
        connection.request("GET", "/")
        response = connection.getresponse()
        response.read()
        statuses.append(response.status)
    connection.close()
    injected = statuses.count(503)
    assert 40 <= injected <= 80  # 30% of 200, give or take three standard deviations
    assert statuses.count(200) == 200 - injected
    assert target.requests_total == 200 - injected  # injected requests never arrived


def test_delay_slows_only_matching_paths(redline_server: Server, faults: FaultProxy) -> None:
    proxy = http_proxy(faults, redline_server())
    toxic(faults, proxy, type="http_delay", attributes={"delay": 300, "path": "/slow"})
    connection = session(proxy)

    def get(path: str) -> float:
        start = time.perf_counter()
        connection.request("GET", path)
        connection.getresponse().read()
        return time.perf_counter() - start

    assert get("/slow/1") >= 0.3
    assert get("/fast") < 0.3
    connection.close()


def test_headers_are_dropped_and_rewritten(redline_server: Server, faults: FaultProxy) -> None:
    target = redline_server(Behaviour(content_type="application/json"))
    proxy = http_proxy(faults, target)
    toxic(faults, proxy, name="no-type", type="http_header",
          attributes={"name": "Content-Type"})  # fmt: skip
    toxic(faults, proxy, name="server", type="http_header",
          attributes={"name": "Server", "value": "broken/1.0"})  # fmt: skip
    connection = session(proxy)
    connection.request("GET", "/")
    response = connection.getresponse()
    assert response.read() == b"ok"
    assert response.getheader("Content-Type") is None
    assert response.getheader("Server") == "broken/1.0"
    connection.close()


def test_request_headers_are_rewritten_on_the_way_up(
    redline_server: Server, faults: FaultProxy
) -> None:
    target = redline_server(Behaviour(require_headers={"Authorization": "Bearer good"}))
    proxy = http_proxy(faults, target)
    toxic(faults, proxy, type="http_header", stream="upstream",
          attributes={"name": "Authorization", "value": "Bearer good"})  # fmt: skip
    connection = session(proxy)
    connection.request("GET", "/", headers={"Authorization": "Bearer bad"})
    assert connection.getresponse().status == 200  # the proxy's value reached the server
    connection.close()


def test_truncate_cuts_the_body_and_closes(redline_server: Server, faults: FaultProxy) -> None:
    proxy = http_proxy(faults, redline_server(Behaviour(body_size=5000)))
    toxic(faults, proxy, type="http_truncate", attributes={"bytes": 100})
    connection = session(proxy)
    connection.request("GET", "/")
    response = connection.getresponse()
    with pytest.raises(http.client.IncompleteRead) as caught:
        response.read()
    assert len(caught.value.partial) == 100
    connection.close()


def test_an_http_toxic_switches_new_connections_to_http_mode(
    redline_server: Server, faults: FaultProxy
) -> None:
    target = redline_server()
    proxy = faults.call(faults.create("tcp", "127.0.0.1:0", f"127.0.0.1:{target.port}"))
    assert "http" not in proxy.to_dict()
    toxic(faults, proxy, type="http_status", attributes={"status": 418})
    assert proxy.to_dict()["http"] is True
    connection = session(proxy)
    connection.request("GET", "/")
    assert connection.getresponse().status == 418
    connection.close()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "http_header", "attributes": {"value": "x"}}, "needs the name of the header"),
        ({"type": "http_status", "attributes": {"status": 700}}, "must be 100..599"),
        ({"type": "http_status", "attributes": {"rate": 1.5}}, "must be within 0..1"),
        ({"type": "http_delay", "attributes": {"path": 3}}, "http_delay.path must be text"),
    ],
)
def test_bad_http_toxics_are_refused(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ToxicError, match=message.replace(".", r"\.")):
        Toxic.from_dict(spec)
