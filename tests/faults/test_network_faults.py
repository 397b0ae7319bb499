"""Network faults below L7 on namespaces the test makes: link down, partition, tbf, netem.

Two hosts, ``a`` and ``b``, in network namespaces joined by a veth pair (10.77.x.1 and
10.77.x.2). Traffic goes only between them; the host's own interfaces are never touched.
"""

from __future__ import annotations

import http.client
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from redline.faults import (
    FaultProxy,
    HostContext,
    HostFaultError,
    Ledger,
    LocalProxies,
    host_fault,
    netem_available,
)
from redline.testing import TestServer

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")

SERVER = """
import socket, sys
server = socket.socket()
server.bind(("0.0.0.0", 7000))
server.listen()
print("up", flush=True)
while True:
    client, _ = server.accept()
    client.sendall(b"x" * int(sys.argv[1]))
    client.close()
"""
CLIENT = """
import socket, sys, time
started = time.monotonic()
try:
    with socket.create_connection((sys.argv[1], 7000), timeout=float(sys.argv[2])) as s:
        got = 0
        while chunk := s.recv(65536):
            got += len(chunk)
    print(f"ok {got} {time.monotonic() - started:.3f}")
except OSError as exc:
    print(f"fail {type(exc).__name__}")
"""


def sh(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def hosts() -> Iterator[tuple[str, str]]:
    tag = secrets.token_hex(2)
    a, b = f"rl-a-{tag}", f"rl-b-{tag}"
    subnet = int(tag, 16) % 250 + 1
    server = None
    try:
        sh("ip", "netns", "add", a)
        sh("ip", "netns", "add", b)
        sh(
            "ip",
            "link",
            "add",
            f"va{tag}",
            "netns",
            a,
            "type",
            "veth",
            "peer",
            f"vb{tag}",
            "netns",
            b,
        )
        for ns, dev, host in ((a, f"va{tag}", 1), (b, f"vb{tag}", 2)):
            sh("ip", "-n", ns, "addr", "add", f"10.77.{subnet}.{host}/24", "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        server = subprocess.Popen(
            ["ip", "netns", "exec", b, sys.executable, "-c", SERVER, "200000"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert server.stdout is not None and server.stdout.readline().strip() == "up"  # noqa: PT018
        yield a, b
    finally:
        if server is not None:
            server.kill()
            server.wait()
            assert server.stdout is not None
            server.stdout.close()
        subprocess.run(["ip", "netns", "del", a], check=False)
        subprocess.run(["ip", "netns", "del", b], check=False)


def fetch(a: str, b: str, *, timeout: float = 2.0) -> list[str]:
    address = b_address(b)
    done = subprocess.run(
        ["ip", "netns", "exec", a, sys.executable, "-c", CLIENT, address, str(timeout)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.split()


def b_address(b: str) -> str:
    out = sh("ip", "-n", b, "-4", "-o", "addr", "show")
    return next(line.split()[3].split("/")[0] for line in out.splitlines() if "10.77." in line)


def dev_of(ns: str) -> str:
    out = sh("ip", "-n", ns, "-o", "link", "show")
    return next(
        line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if " v" in line
    )


def applied(kind: str, spec: dict[str, object], ledger: Ledger, **context: object):  # type: ignore[no-untyped-def]
    fault = host_fault("net", kind, spec, for_s=30)
    ctx = HostContext(ledger=ledger, **context)  # type: ignore[arg-type]
    fault.check(ctx)
    fault.apply(ctx)
    return fault


@pytest.fixture
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Ledger:
    monkeypatch.setenv("REDLINE_FAULTS_DIR", str(tmp_path / "ledger"))
    return Ledger(tmp_path / "ledger")


def test_a_link_taken_down_cuts_the_hosts_apart_until_it_is_undone(
    hosts: tuple[str, str], ledger: Ledger
) -> None:
    a, b = hosts
    assert fetch(a, b)[0] == "ok"
    dev = dev_of(a)
    fault = applied("network", {"netns": a, "dev": dev, "down": True}, ledger)
    assert "state DOWN" in sh("ip", "-n", a, "link", "show", dev)
    assert fetch(a, b, timeout=0.5)[0] == "fail"
    fault.undo()
    assert "DOWN" not in sh("ip", "-n", a, "link", "show", dev).split(">")[0]
    deadline = time.monotonic() + 5
    while fetch(a, b)[0] != "ok":
        assert time.monotonic() < deadline, "the link came back but nothing passes"
        time.sleep(0.2)


def test_a_partition_drops_both_ways_and_its_routes_go_after(
    hosts: tuple[str, str], ledger: Ledger
) -> None:
    a, b = hosts
    routes_before = sh("ip", "-n", a, "route", "show"), sh("ip", "-n", b, "route", "show")
    fault = applied("network", {"partition": [a, b]}, ledger)
    assert "blackhole" in sh("ip", "-n", a, "route", "show")
    assert "blackhole" in sh("ip", "-n", b, "route", "show")
    assert fetch(a, b, timeout=0.5)[0] == "fail"
    fault.undo()
    assert (sh("ip", "-n", a, "route", "show"), sh("ip", "-n", b, "route", "show")) == routes_before
    assert fetch(a, b)[0] == "ok"


def test_a_bandwidth_cap_slows_a_transfer_to_its_rate(
    hosts: tuple[str, str], ledger: Ledger
) -> None:
    a, b = hosts
    dev = dev_of(b)  # b sends: shape its egress
    fast = fetch(a, b)
    fault = applied("network", {"netns": b, "dev": dev, "rate": "800kbit"}, ledger)
    assert "tbf" in sh("tc", "-n", b, "qdisc", "show", "dev", dev)
    slow = fetch(a, b, timeout=10)
    fault.undo()
    assert "tbf" not in sh("tc", "-n", b, "qdisc", "show", "dev", dev)
    assert slow[0] == "ok" and slow[1] == "200000"  # noqa: PT018
    # 200 kB at 100 kB/s: about 2 s (the first burst of 4 kB aside), against a few ms
    assert 1.4 < float(slow[2]) < 4.0
    assert float(fast[2]) < 0.5


def test_netem_where_the_kernel_has_it_else_the_proxy_and_the_result_says_which(
    hosts: tuple[str, str], ledger: Ledger, redline_server: Callable[..., TestServer]
) -> None:
    a, b = hosts
    spec = {"netns": b, "dev": dev_of(b), "delay": "120ms"}
    if netem_available():  # the kernel delays b's packets itself
        fast = float(fetch(a, b)[2])
        fault = applied("network", spec, ledger)
        slow = float(fetch(a, b)[2])
        fault.undo()
        assert fault.via == "tc netem"
        assert slow > fast + 0.2  # a connect and a transfer, each a round trip later
        return
    with pytest.raises(HostFaultError, match="no sch_netem") as caught:
        host_fault("net", "network", spec, for_s=1).check(HostContext(ledger=ledger))
    assert caught.value.key == "proxy"
    target = redline_server()
    faults = FaultProxy(port=None)
    with faults.running():
        proxy = faults.call(faults.create("svc", "127.0.0.1:0", f"127.0.0.1:{target.port}"))
        host, port = proxy.listen.rsplit(":", 1)

        def timed_get() -> float:
            started = time.monotonic()
            connection = http.client.HTTPConnection(host, int(port), timeout=5)
            connection.request("GET", "/")
            connection.getresponse().read()
            connection.close()
            return time.monotonic() - started

        before = timed_get()
        fault = applied("network", {**spec, "proxy": "svc"}, ledger, proxies=LocalProxies(faults))
        during = timed_get()
        fault.undo()
        after = timed_get()
        assert proxy.toxics == []  # the fallback's toxic is gone
    assert fault.via.startswith("fault proxy")
    assert during > before + 0.1
    assert after < during - 0.1
