"""A cluster of several "hosts": network namespaces joined by a bridge, one cut off mid-run.

The scheduler, three workers, the target and the coordinator (the ``redline`` command)
each run in a namespace of their own, with an address in a private test subnet that
exists only inside those namespaces. Every interface is made inside them (the veth
pairs are created in the hub namespace), so the host's own network is never touched;
deleting the namespaces at the end removes everything, also after a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(300)

SUBNET = "10.231.77"
DASK = str(Path(sys.executable).with_name("dask"))


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def _namespaces_allowed() -> str | None:
    if shutil.which("ip") is None:
        return "needs ip(8)"
    if os.geteuid() != 0:
        return "needs root for network namespaces"
    probe = f"rl-probe-{os.getpid()}"
    try:
        _ip("netns", "add", probe)
    except subprocess.CalledProcessError as exc:
        return f"this machine does not allow network namespaces: {exc.stderr.decode().strip()}"
    _ip("netns", "del", probe)
    return None


class Hosts:
    """Namespaces on one bridge; :meth:`close` deletes them and ends their processes."""

    def __init__(self, names: list[str]) -> None:
        self.tag = f"rl{os.getpid() % 100000}"
        self.hub = f"{self.tag}-hub"
        self.names = {name: f"{self.tag}-{name}" for name in names}
        self.addresses: dict[str, str] = {}
        self.processes: list[subprocess.Popen[bytes]] = []
        _ip("netns", "add", self.hub)
        _ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.hub, "link", "set", "br0", "up")
        for number, (name, ns) in enumerate(self.names.items(), start=2):
            _ip("netns", "add", ns)
            port = f"p{number}"
            _ip("-n", self.hub, "link", "add", port, "type", "veth", "peer", "name", "eth0",
                "netns", ns)  # fmt: skip
            _ip("-n", self.hub, "link", "set", port, "master", "br0", "up")
            address = f"{SUBNET}.{number}"
            _ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            self.addresses[name] = address

    def start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            ["ip", "netns", "exec", self.names[name], *argv],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def cut(self, name: str) -> None:
        """Take the host's link down: it is cut off from every other host."""
        _ip("-n", self.names[name], "link", "set", "eth0", "down")

    def close(self) -> None:
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        for ns in [*self.names.values(), self.hub]:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    why = _namespaces_allowed()
    if why is not None:
        pytest.skip(why)  # the LocalCluster and process tests still run
    made = Hosts(["sched", "h1", "h2", "h3", "target", "coord"])
    try:
        yield made
    finally:
        made.close()


def _wait_listening(hosts: Hosts, name: str, port: int) -> None:
    deadline = time.monotonic() + 30
    probe = f"import socket; socket.create_connection(('{hosts.addresses[name]}', {port}), 1)"
    while time.monotonic() < deadline:
        done = subprocess.run(
            ["ip", "netns", "exec", hosts.names["coord"], sys.executable, "-c", probe],
            capture_output=True, check=False,
        )  # fmt: skip
        if done.returncode == 0:
            return
        time.sleep(0.2)
    raise TimeoutError(f"{name} does not listen on {port}")


def test_three_hosts_share_the_load_and_one_cut_off_is_reported(
    hosts: Hosts, tmp_path: Path
) -> None:
    sched = hosts.addresses["sched"]
    scheduler = f"tcp://{sched}:8786"
    target = hosts.addresses["target"]
    hosts.start("target", [sys.executable, "-m", "redline", "testserver", "--host", target,
                           "--port", "8080", "--latency", "2ms"])  # fmt: skip
    hosts.start("sched", [DASK, "scheduler", "--host", sched, "--port", "8786", "--no-dashboard"])
    _wait_listening(hosts, "target", 8080)
    _wait_listening(hosts, "sched", 8786)
    for name in ("h1", "h2", "h3"):
        hosts.start(name, [DASK, "worker", scheduler, "--name", name, "--host",
                           hosts.addresses[name], "--nthreads", "1", "--no-nanny",
                           "--no-dashboard", "--death-timeout", "60"])  # fmt: skip
    ready = (
        f"from distributed import Client; "
        f"Client('{scheduler}', timeout='30s').wait_for_workers(3, timeout=60)"
    )
    subprocess.run(["ip", "netns", "exec", hosts.names["coord"], sys.executable, "-c", ready],
                   check=True, capture_output=True, timeout=90)  # fmt: skip
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        f"target: http://{hosts.addresses['target']}:8080\n"
        "requests: [{path: /}]\n"
        "load: {rate: 300}\n"
        "duration: 9s\n"
        "generator: {on_worker_lost: continue}\n"
    )
    out = tmp_path / "run.json"
    coordinator = subprocess.Popen(
        ["ip", "netns", "exec", hosts.names["coord"], sys.executable, "-m", "redline", "run",
         str(plan), "--cluster", scheduler, "--cluster-wait", "30", "--no-store", "--quiet",
         "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    hosts.processes.append(coordinator)
    started = time.monotonic()
    cut_at: float | None = None
    while coordinator.poll() is None and time.monotonic() - started < 120:
        if cut_at is None and _load_started(hosts):
            time.sleep(3.0)
            hosts.cut("h2")
            cut_at = time.time()
        time.sleep(0.1)
    _, stderr = coordinator.communicate(timeout=60)
    assert coordinator.returncode == 0, stderr.decode()
    document = json.loads(out.read_text())
    by_name = {h["name"]: h for h in document["generator"]["hosts"]}
    assert set(by_name) == {"h1", "h2", "h3"}, "the run started before every worker joined"
    lost = by_name["h2"]
    assert lost["lost_at"] is not None
    assert lost["lost_reason"].startswith(("no word for", "it left"))
    assert by_name["h1"]["lost_at"] is None
    assert by_name["h3"]["lost_at"] is None
    short = [i for i in document["intervals"] if i.get("missing")]
    assert short
    assert short[0]["index"] == lost["lost_at"]
    assert all(i["missing"] == pytest.approx(1 / 3) for i in short)
    # noticed within two intervals of the cut (one kernel clock in every namespace)
    assert cut_at is not None
    load_start = datetime.fromisoformat(document["started_at"]).timestamp()
    assert lost["lost_noticed_s"] - (cut_at - load_start) <= 2.0
    assert all(abs(h["clock_offset_ms"]) < 50 for h in by_name.values())
    assert any("h2" in note and "share" in note for note in document["notes"])


def _load_started(hosts: Hosts) -> bool:
    """Whether the target has seen requests yet (its /proc view: any TCP connection)."""
    done = subprocess.run(
        ["ip", "netns", "exec", hosts.names["target"], "ss", "-Htn", "state", "established",
         "sport", "= :8080"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return bool(done.stdout.strip())
