"""Toxiproxy's API, driven by Toxiproxy's own Python client (toxiproxy-python, from PyPI)."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from toxiproxy import Toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import NotFound, ProxyExists

from redline.faults import API_VERSION, FaultProxy
from redline.testing import TestServer

Server = Callable[..., TestServer]


@pytest.fixture
def api() -> Iterator[FaultProxy]:
    faults = FaultProxy(port=0, seed=3)
    with faults.running():
        APIConsumer.host, APIConsumer.port = faults.host, faults.port
        yield faults


def call(api: FaultProxy, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    connection = http.client.HTTPConnection(api.host, int(api.port or 0), timeout=5)
    try:
        payload = body if isinstance(body, bytes) or body is None else json.dumps(body)
        connection.request(method, path, body=payload)
        response = connection.getresponse()
        text = response.read()
        return response.status, json.loads(text) if text.strip().startswith((b"{", b"[")) else text
    finally:
        connection.close()


def get_through(listen: str) -> int:
    host, _, port = listen.rpartition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        start = time.perf_counter()
        connection.request("GET", "/")
        connection.getresponse().read()
        return int((time.perf_counter() - start) * 1000)
    finally:
        connection.close()


def test_the_toxiproxy_client_creates_poisons_and_removes(
    api: FaultProxy, redline_server: Server
) -> None:
    target = redline_server()
    server = Toxiproxy()
    assert server.running()
    assert json.loads(server.version()) == {"version": API_VERSION}
    proxy = server.create(upstream=f"127.0.0.1:{target.port}", name="shop")
    assert proxy.enabled is True
    assert proxy.listen.startswith("127.0.0.1:")
    with pytest.raises(ProxyExists):
        server.create(upstream=f"127.0.0.1:{target.port}", name="shop")
    proxy.add_toxic(type="latency", attributes={"latency": 300, "jitter": 0})
    toxics = proxy.toxics()
    assert list(toxics) == ["latency_downstream"]
    assert toxics["latency_downstream"].attributes == {"latency": 300, "jitter": 0}
    assert get_through(proxy.listen) >= 300
    proxy.destroy_toxic("latency_downstream")
    assert proxy.toxics() == {}
    assert get_through(proxy.listen) < 300
    with proxy.down():
        assert server.get_proxy("shop").enabled is False
    assert server.get_proxy("shop").enabled is True
    proxy.add_toxic(type="timeout", attributes={"timeout": 0})
    assert server.reset()
    assert proxy.toxics() == {}
    assert list(server.proxies()) == ["shop"]
    server.destroy(proxy)
    assert server.proxies() == {}
    with pytest.raises(NotFound):
        proxy.toxics()


def test_shapes_and_status_codes_are_toxiproxys(api: FaultProxy, redline_server: Server) -> None:
    upstream = f"127.0.0.1:{redline_server().port}"
    status, made = call(api, "POST", "/proxies", {"name": "db", "upstream": upstream,
                                                  "listen": "127.0.0.1:0"})  # fmt: skip
    assert status == 201
    assert set(made) == {"name", "listen", "upstream", "enabled", "toxics"}
    assert call(api, "POST", "/proxies", {"name": "db", "upstream": upstream})[0] == 409
    assert call(api, "POST", "/proxies", {"name": "nameless"}) == (
        400,
        {"error": "missing required field: name and upstream", "status": 400},
    )
    assert call(api, "GET", "/proxies/none") == (404, {"error": "proxy not found", "status": 404})
    bandwidth = {"type": "bandwidth", "stream": "upstream", "attributes": {"rate": 9}}
    status, toxic = call(api, "POST", "/proxies/db/toxics", bandwidth)
    assert status == 200
    assert toxic == {"name": "bandwidth_upstream", "type": "bandwidth", "stream": "upstream",
                     "toxicity": 1.0, "attributes": {"rate": 9}}  # fmt: skip
    assert (
        call(api, "POST", "/proxies/db/toxics", {"type": "bandwidth", "stream": "upstream"})[0]
        == 409
    )
    assert call(api, "POST", "/proxies/db/toxics", {"type": "flood"})[0] == 400
    status, changed = call(api, "POST", "/proxies/db/toxics/bandwidth_upstream",
                           {"attributes": {"rate": 20}, "toxicity": 0.5})  # fmt: skip
    assert status == 200
    assert changed["attributes"] == {"rate": 20}
    assert changed["toxicity"] == 0.5
    assert call(api, "GET", "/proxies/db/toxics/none")[0] == 404
    assert call(api, "DELETE", "/proxies/db/toxics/bandwidth_upstream")[0] == 204
    assert call(api, "GET", "/proxies/db/toxics") == (200, [])
    status, populated = call(api, "POST", "/populate", [
        {"name": "db", "listen": "127.0.0.1:0", "upstream": upstream},
        {"name": "cache", "listen": "127.0.0.1:0", "upstream": upstream},
    ])  # fmt: skip
    assert status == 201
    assert [p["name"] for p in populated["proxies"]] == ["db", "cache"]
    assert sorted(call(api, "GET", "/proxies")[1]) == ["cache", "db"]
    assert call(api, "POST", "/proxies/db", {"enabled": False})[1]["enabled"] is False
    assert call(api, "POST", "/reset")[0] == 204
    assert call(api, "GET", "/proxies/db")[1]["enabled"] is True
    assert call(api, "DELETE", "/proxies/cache")[0] == 204
    assert call(api, "POST", "/proxies", b"{")[0] == 400


def test_metrics_parse_as_prometheus_and_count_bytes(
    api: FaultProxy, redline_server: Server
) -> None:
    upstream = f"127.0.0.1:{redline_server().port}"
    _, made = call(api, "POST", "/proxies", {"name": "web", "upstream": upstream})
    get_through(made["listen"])
    status, text = call(api, "GET", "/metrics")
    assert status == 200
    samples = {
        (s.name, s.labels.get("direction", ""), s.labels["proxy"]): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }
    assert samples[("toxiproxy_proxy_sent_bytes_total", "downstream", "web")] > 0
    assert samples[("toxiproxy_proxy_sent_bytes_total", "upstream", "web")] > 0
    assert samples[("redline_proxy_connections_total", "", "web")] == 1


def test_redline_proxy_serves_a_config_until_ctrl_c(redline_server: Server, tmp_path: Path) -> None:
    server = redline_server()
    upstream = f"127.0.0.1:{server.port}"
    config = tmp_path / "proxies.json"
    config.write_text(json.dumps([{"name": "shop", "listen": "127.0.0.1:0", "upstream": upstream}]))
    process = subprocess.Popen(
        [sys.executable, "-m", "redline", "proxy", "--port", "0", "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "Toxiproxy API at http://127.0.0.1:" in line, line
        port = int(line.rsplit(":", 1)[1].strip().rstrip("/"))
        listed = process.stdout.readline()
        assert listed.startswith("proxy shop on 127.0.0.1:")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/proxies")
        proxies = json.loads(connection.getresponse().read())
        connection.close()
        assert proxies["shop"]["upstream"] == upstream
        before = server.requests_total
        get_through(proxies["shop"]["listen"])
        assert server.requests_total == before + 1  # the request went through the proxy
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=10)
        assert process.returncode == 0, stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
