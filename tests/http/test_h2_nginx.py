"""HTTP/2 against nginx, a third implementation: h2 over TLS by ALPN, and h2c.

Debian's nginx (installed by .ci/run) runs as a child of the test, on free ports, with a
throwaway certificate; it is stopped when the module's tests end.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from redline.engine import run_plan
from redline.plan import plan_from_dict

_CONF = """
{user}
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    http2_max_concurrent_streams 8;
    server {{
        listen 127.0.0.1:{tls_port} ssl http2;
        listen 127.0.0.1:{plain_port} http2;
        ssl_certificate {dir}/cert.pem;
        ssl_certificate_key {dir}/key.pem;
        location / {{ default_type text/plain; return 200 "ok\\n"; }}
        location /missing {{ return 404; }}
        location /big {{ alias {dir}/big.bin; }}
        location /data.json {{
            alias {dir}/data.json;
            default_type application/json;
            gzip on; gzip_types application/json; gzip_min_length 0;
        }}
    }}
}}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        pytest.fail("nginx is needed for the HTTP/2 interop tests: apt-get install nginx")
    home = tmp_path_factory.mktemp("nginx")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_pem.write_to_path(str(home / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(home / "cert.pem"))
    (home / "big.bin").write_bytes(b"z" * 3_000_000)
    (home / "data.json").write_text(json.dumps([{"id": i, "ok": True} for i in range(2000)]))
    ports = {"tls_port": _free_port(), "plain_port": _free_port()}
    user = "user root;" if os.geteuid() == 0 else ""  # workers read the test's own files
    (home / "nginx.conf").write_text(_CONF.format(dir=home, user=user, **ports))
    process = subprocess.Popen(
        [binary, "-c", str(home / "nginx.conf"), "-p", str(home)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", ports["plain_port"]), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield {**ports, "home": home}
    finally:
        process.terminate()
        process.wait(timeout=10)


def _run(url: str, **changes: Any) -> Any:
    data: dict[str, Any] = {
        "name": "nginx", "target": url, "requests": [{"name": "get", "path": "/"}],
        "load": {"rate": "300/s"}, "duration": "1s", "workers": 1, "seed": 1,
    }  # fmt: skip
    data.update(changes)
    return run_plan(plan_from_dict(data, source="test"))


def _access_lines(home: Path) -> list[str]:
    return (home / "access.log").read_text().splitlines()


def test_h2_over_tls_against_nginx(nginx: dict[str, Any]) -> None:
    before = len(_access_lines(nginx["home"]))
    result = _run(
        f"https://127.0.0.1:{nginx['tls_port']}", protocol="h2", tls={"verify": False},
        requests=[{"name": "get", "path": "/", "weight": 2},
                  {"name": "missing", "path": "/missing", "weight": 1}],
    )  # fmt: skip
    lines = _access_lines(nginx["home"])[before:]
    assert result.endpoint("get").status == {200: 200}
    assert result.endpoint("missing").status == {404: 100}
    assert len(lines) == 300
    assert all('"GET /' in line and "HTTP/2.0" in line for line in lines)


def test_h2c_against_nginx_with_users_over_its_stream_limit(nginx: dict[str, Any]) -> None:
    # nginx allows 8 streams a connection: 20 users take 3 connections, none refused
    result = _run(f"http://127.0.0.1:{nginx['plain_port']}", protocol="h2c", load={"vus": 20})
    total = result.total()
    assert total.errors == 0
    assert total.requests > 500


def test_a_response_bigger_than_the_window_over_tls(nginx: dict[str, Any]) -> None:
    result = _run(
        f"https://127.0.0.1:{nginx['tls_port']}", protocol="h2", tls={"verify": False},
        requests=[{"name": "big", "path": "/big"}], load={"rate": "10/s"},
    )  # fmt: skip
    big = result.endpoint("big")
    assert big.status == {200: 10}
    assert big.bytes_in >= 10 * 3_000_000


def test_nginx_gzip_over_h2_is_decoded_and_counted(nginx: dict[str, Any]) -> None:
    size = (nginx["home"] / "data.json").stat().st_size
    result = _run(
        f"https://127.0.0.1:{nginx['tls_port']}", protocol="h2", tls={"verify": False},
        requests=[{"name": "data", "path": "/data.json"}], load={"rate": "20/s"},
        compression={"accept": ["gzip"]},
    )  # fmt: skip
    metrics = result.metrics()
    assert metrics["compression.responses.gzip"].total == 20
    assert metrics["compression.decoded_bytes"].total == 20 * size
    assert metrics["compression.wire_bytes"].total < 20 * size / 4
