"""A plan's allow and block lists on a real run: checked before any load and per connection."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from redline.core import RunError
from redline.engine import run_plan
from redline.plan import Plan, plan_from_dict
from redline.testing import TestServer


@pytest.fixture(scope="module")
def server() -> Iterator[TestServer]:
    with TestServer().running() as running:
        yield running


def plan(url: str, **extra: Any) -> Plan:
    return plan_from_dict(
        {"target": url, "requests": [{"path": "/"}], "load": {"rate": 50}, "duration": "1s",
         **extra}
    )  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"block": ["127.0.0.0/8"]}, "is blocked by the plan's block: 127.0.0.0/8"),
        ({"allow": ["10.0.0.0/8", "*.example.com"]}, "is not in the plan's allow"),
        ({"allow": ["127.0.0.0/8"], "block": ["127.0.0.1"]}, "block: 127.0.0.1"),
    ],
)
def test_a_blocked_target_is_an_error_before_any_load(
    server: TestServer, extra: dict[str, Any], reason: str
) -> None:
    before = server.requests_total
    with pytest.raises(RunError, match=reason):
        run_plan(plan(server.url, **extra))
    assert server.requests_total == before


def test_the_name_does_not_matter_the_address_it_resolves_to_does(server: TestServer) -> None:
    url = server.url.replace("127.0.0.1", "localhost")
    with pytest.raises(RunError, match=r"localhost \(127\.0\.0\.1\) is blocked"):
        run_plan(plan(url, block=["127.0.0.0/8"]))
    # allowed by name: the address is permitted even outside any allowed network
    result = run_plan(plan(url, allow=["localhost"], block=["10.0.0.0/8"]))
    assert result.total().requests == 50
    assert result.total().errors == 0


def test_every_connection_is_checked_not_only_the_first(server: TestServer) -> None:
    # past the check before the run (as when a name resolves elsewhere mid-run): each
    # connection the workers open is refused, and nothing reaches the server
    before = server.requests_total
    result = run_plan(plan(server.url, block=["127.0.0.1/32"]), check_target=False)
    assert server.requests_total == before
    assert result.total().requests == 50
    assert result.total().error_classes == {"blocked": 50}


def test_the_command_line_adds_to_the_lists(server: TestServer) -> None:
    before = server.requests_total
    done = subprocess.run(
        [sys.executable, "-m", "redline", "run", "--url", server.url, "--rate", "10",
         "--duration", "1s", "--no-store", "--quiet", "--block", "127.0.0.0/8"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 3
    assert "is blocked by the plan's block: 127.0.0.0/8" in done.stderr
    assert server.requests_total == before
