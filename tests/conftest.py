from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import uvicorn
from hypothesis import HealthCheck, settings

# Some tests stop a child process with SIGINT, as Ctrl-C would. A suite started in the
# background by a shell without job control runs with SIGINT ignored, and children would
# inherit that (Python installs its handler only where SIGINT is not ignored): restore it.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# CI machines are shared and noisy: property tests must not fail on timing.
settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=200
)
settings.load_profile("ci" if os.environ.get("CI") else "default")


@pytest.fixture(autouse=True)
def _private_run_store(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every test stores runs in a store of its own, never in the checkout's .redline/."""
    monkeypatch.setenv("REDLINE_STORE", str(tmp_path_factory.mktemp("store") / "runs.db"))


# -- PostgreSQL ---------------------------------------------------------------------------
# Tests use a real server: $REDLINE_TEST_POSTGRES (a URL of a database the tests may
# create databases from), else the one on 127.0.0.1:5432, else a throwaway cluster started
# from the machine's PostgreSQL binaries. Each test session gets a fresh database.

_LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


def _reachable(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def _postgres_binaries() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return versions[-1].parent if versions else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _throwaway_cluster() -> Iterator[str]:
    """Start a PostgreSQL cluster in a temporary directory on a free loopback port."""
    binaries = _postgres_binaries()
    if binaries is None:
        pytest.fail(
            "no PostgreSQL for the store tests: none on 127.0.0.1:5432, no initdb installed, "
            "and REDLINE_TEST_POSTGRES is not set (install postgresql or point it at a server)"
        )
    # Not under pytest's temporary directory: as root, that one is closed to the postgres
    # user, and PostgreSQL refuses to run as root.
    base = Path(tempfile.mkdtemp(prefix="redline-pg-"))
    data, port = base / "pgdata", _free_port()
    prefix: list[str] = []
    if os.geteuid() == 0:
        prefix = ["runuser", "-u", "postgres", "--"]
        base.chmod(0o777)
    ctl = [*prefix, str(binaries / "pg_ctl"), "-D", str(data), "-w"]
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={base}"
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, base, ignore_errors=True)
        subprocess.run(
            [*prefix, str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"],
            check=True,
            capture_output=True,
        )
        subprocess.run([*ctl, "-o", options, "-l", str(base / "log"), "start"], check=True)
        stack.callback(subprocess.run, [*ctl, "-m", "immediate", "stop"], capture_output=True)
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL database, dropped when the session ends."""
    with contextlib.ExitStack() as stack:
        admin = os.environ.get("REDLINE_TEST_POSTGRES") or _LOCAL_POSTGRES
        if not _reachable(admin):
            admin = stack.enter_context(_throwaway_cluster())
        name = f"redline_test_{secrets.token_hex(4)}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        try:
            yield _with_database(admin, name)
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _with_database(admin: str, database: str) -> str:
    """``admin`` pointing at ``database`` instead."""
    parts = urlsplit(admin)
    return urlunsplit(parts._replace(path=f"/{database}"))


# -- Redis --------------------------------------------------------------------------------
# Tests use a real server: $REDLINE_TEST_REDIS, else the one on 127.0.0.1:6379, else a
# redis-server started on a free loopback port (keeping nothing on disk). Each test gets a
# key prefix of its own, so tests never see each other's keys.

_LOCAL_REDIS = "redis://127.0.0.1:6379/0"


def _redis_answers(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def _throwaway_redis() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(
            "no Redis for the resilience tests: none on 127.0.0.1:6379, no redis-server "
            "installed, and REDLINE_TEST_REDIS is not set (install redis-server)"
        )
    port = _free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"redis://127.0.0.1:{port}/0"
        for _ in range(100):
            if _redis_answers(url):
                break
            time.sleep(0.05)
        yield url
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The URL of a Redis server the tests may write to (under their own prefixes)."""
    with contextlib.ExitStack() as stack:
        url = os.environ.get("REDLINE_TEST_REDIS") or _LOCAL_REDIS
        if not _redis_answers(url):
            url = stack.enter_context(_throwaway_redis())
        yield url


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix no other test uses."""
    return f"redline-test:{secrets.token_hex(6)}:"


# -- RabbitMQ ----------------------------------------------------------------------------------
# Tests use $REDLINE_TEST_RABBITMQ, else the broker on 127.0.0.1:5672, else a node of their
# own started from Debian's rabbitmq-server (RabbitNode). Each test names its own queues.

_LOCAL_RABBITMQ = "amqp://guest:guest@127.0.0.1:5672/"


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
        return True
    return False


class RabbitNode:
    """A RabbitMQ node of the test's own, on free loopback ports, with its data in ``home``.

    Its data survives :meth:`restart` (durable queues, persistent messages); it never
    touches the machine's own broker (another node name, other ports, another directory).
    """

    def __init__(self, home: Path) -> None:
        # Debian's /usr/sbin/rabbitmq-server switches to the rabbitmq user, who may not
        # write here: the script behind it runs the node as the test's own user
        binary = "/usr/lib/rabbitmq/bin/rabbitmq-server"
        if not Path(binary).exists():
            binary = shutil.which("rabbitmq-server") or binary
        if not Path(binary).exists():
            pytest.fail("rabbitmq-server is needed (.ci/run installs Debian's)")
        self.port, self.dist_port = _free_port(), _free_port()
        name = f"redline{secrets.token_hex(3)}@localhost"
        self.env = {
            **os.environ,
            "HOME": str(home),
            "RABBITMQ_NODENAME": name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(home / "mnesia"),
            "RABBITMQ_LOG_BASE": str(home / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(home / "plugins"),
            "RABBITMQ_PID_FILE": str(home / "pid"),
            "RABBITMQ_CONFIG_FILE": str(home / "none"),
        }
        for folder in ("mnesia", "log"):
            (home / folder).mkdir(exist_ok=True)
        self.home = home
        self.binary = binary
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary], env=self.env, cwd=self.home, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if _port_open(self.port):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"rabbitmq-server did not start on 127.0.0.1:{self.port}")

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture(scope="session")
def rabbitmq_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a RabbitMQ broker the tests may declare queues on (their own names)."""
    url = os.environ.get("REDLINE_TEST_RABBITMQ") or _LOCAL_RABBITMQ
    port = urlsplit(url).port or 5672
    if _port_open(port):
        yield url
        return
    node = RabbitNode(tmp_path_factory.mktemp("rabbitmq"))
    try:
        yield node.url
    finally:
        node.stop()


@pytest.fixture
def rabbit_node(tmp_path: Path) -> Iterator[RabbitNode]:
    """A RabbitMQ node of this test's own, to restart (stopped after the test)."""
    node = RabbitNode(tmp_path)
    try:
        yield node
    finally:
        node.stop()


# -- ASGI apps on loopback ----------------------------------------------------------------

Serve = Callable[..., str]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """``serve(app, lifespan="off")``: uvicorn serving ``app`` on a free loopback port (its URL)."""
    with contextlib.ExitStack() as stack:

        def start(app: Any, lifespan: str = "off") -> str:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = int(sock.getsockname()[1])
            config = uvicorn.Config(
                app, host="127.0.0.1", port=port, lifespan=lifespan, log_level="warning",
                access_log=False,
            )  # fmt: skip
            server = uvicorn.Server(config)
            thread = threading.Thread(target=server.run, daemon=True)
            thread.start()
            stack.callback(thread.join, 10)
            stack.callback(setattr, server, "should_exit", True)
            deadline = time.monotonic() + 10
            while not server.started:
                if time.monotonic() > deadline or not thread.is_alive():
                    raise RuntimeError("uvicorn did not start")
                time.sleep(0.01)
            return f"http://127.0.0.1:{port}"

        yield start


@pytest.fixture(scope="session")
def promtool() -> str:
    """The path of Prometheus' promtool; its absence fails the test, as any missing part."""
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is needed: install Debian's prometheus package (.ci/run does)")
    return found
