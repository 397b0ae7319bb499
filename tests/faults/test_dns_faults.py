"""redline's DNS server, and its faults, seen through glibc's own resolver.

The resolving process runs as a target would, through :func:`resolv_conf_argv`: in a mount
namespace of its own whose /etc/resolv.conf names the server (the host's file is left
alone, which the test checks).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from redline.faults import DnsServer, HostContext, HostFaultError, host_fault, resolv_conf_argv

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="port 53 and a mount namespace need root and unshare",
)

LOOKUP = """
import socket, sys, time
started = time.monotonic()
try:
    found = socket.getaddrinfo(sys.argv[1], 80, socket.AF_INET, socket.SOCK_STREAM)
    print("ok", found[0][4][0], round(time.monotonic() - started, 3))
except socket.gaierror as exc:
    print("fail", exc.errno, round(time.monotonic() - started, 3))
"""


def lookup(server: DnsServer, folder: Path, name: str = "payments.test") -> list[str]:
    argv = resolv_conf_argv([sys.executable, "-c", LOOKUP, name], server, folder)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True)
    return done.stdout.split()


@pytest.fixture
def server() -> Iterator[DnsServer]:
    with DnsServer({"payments.test": "127.0.0.7", "v6.test": "::1"}) as dns:
        yield dns


def test_names_resolve_through_it_and_the_hosts_resolv_conf_is_untouched(
    server: DnsServer, tmp_path: Path
) -> None:
    before = Path("/etc/resolv.conf").read_text()
    assert lookup(server, tmp_path)[:2] == ["ok", "127.0.0.7"]
    assert lookup(server, tmp_path, "unknown.test")[0] == "fail"
    assert server.queries >= 2
    assert Path("/etc/resolv.conf").read_text() == before


@pytest.mark.parametrize(
    ("spec", "outcome"),
    [({"servfail": True}, "fail"), ({"nxdomain": True}, "fail"), ({"drop": True}, "fail"),
     ({"delay": "400ms"}, "ok")],
)  # fmt: skip
def test_each_fault_shows_in_the_lookup_and_goes_when_undone(
    server: DnsServer, tmp_path: Path, spec: dict[str, object], outcome: str
) -> None:
    fast = float(lookup(server, tmp_path)[2])
    fault = host_fault("dns", "dns", {"name": "payments.test", **spec}, for_s=10)
    context = HostContext(dns=server)
    fault.check(context)
    fault.apply(context)
    during = lookup(server, tmp_path)
    fault.undo()
    after = lookup(server, tmp_path)
    assert during[0] == outcome
    if "delay" in spec:
        assert float(during[2]) >= 0.4 > fast
    if "drop" in spec:
        assert float(during[2]) >= 0.9  # the resolver waited its timeout (1 s)
    assert after[:2] == ["ok", "127.0.0.7"]


def test_a_dns_fault_needs_a_server_and_a_name_it_knows(server: DnsServer) -> None:
    fault = host_fault("dns", "dns", {"name": "payments.test", "servfail": True}, for_s=1)
    with pytest.raises(HostFaultError, match="no DNS server"):
        fault.check(HostContext())
    other = host_fault("dns", "dns", {"name": "nowhere.test", "servfail": True}, for_s=1)
    with pytest.raises(HostFaultError, match="no record") as caught:
        other.check(HostContext(dns=server))
    assert caught.value.key == "name"
