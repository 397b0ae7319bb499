"""Imported traffic replayed against the test server: the mix it sees matches the source."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from redline.cli._main import main
from redline.engine import run_plan
from redline.plan import load_plan
from redline.testing import TestServer

Server = Callable[..., TestServer]
START = datetime(2026, 11, 26, 9, 0, 0, tzinfo=UTC)


def replay(plan_file: Path, **overrides: object) -> None:
    result = run_plan(load_plan(plan_file, overrides=overrides))
    assert result.complete


def stamp(when: datetime) -> str:
    return when.strftime("%d/%b/%Y:%H:%M:%S +0000")


def shares(counts: Counter[str]) -> dict[str, float]:
    total = sum(counts.values())
    return {key: n / total for key, n in counts.items()}


def test_har_recording_replays_its_journey(redline_server: Server, tmp_path: Path) -> None:
    server = redline_server()
    paths = ["/", "/search?q=lamp", "/products/7", "/cart", "/checkout"]
    entries = []
    for i, path in enumerate(paths):
        at = START + timedelta(milliseconds=30 * i)
        entries.append(
            {
                "startedDateTime": at.isoformat().replace("+00:00", "Z"),
                "time": 5,
                "request": {
                    "method": "POST" if path == "/checkout" else "GET",
                    "url": server.url + path,
                    "headers": [],
                },
                "response": {"status": 200, "content": {"mimeType": "text/html"}},
            }
        )
    entries.append(
        {**entries[0], "request": {**entries[0]["request"], "url": server.url + "/app.css"}}
    )
    har = tmp_path / "visit.har"
    har.write_text(json.dumps({"log": {"entries": entries}}))
    plan_file = tmp_path / "visit.yaml"
    assert main(["import", "har", str(har), "--rate", "20/s", "--out", str(plan_file)]) == 0
    replay(plan_file, duration="2s")
    seen = server.requests_by_path
    assert "/app.css" not in seen  # static assets are filtered out
    assert set(seen) == {"/", "/search", "/products/7", "/cart", "/checkout"}
    # 40 journeys, each request once per journey: the mix is the recording's exactly.
    assert set(seen.values()) == {40}


def test_access_log_mix_is_replayed_within_two_percent(
    redline_server: Server, tmp_path: Path
) -> None:
    server = redline_server()
    rng = random.Random(5)
    paths = rng.choices(["/a", "/b", "/c", "/d"], weights=[50, 25, 15, 10], k=2000)
    source = Counter(paths)
    log = tmp_path / "access.log"
    log.write_text(
        "".join(
            f"127.0.0.1 - - [{stamp(START + timedelta(milliseconds=5 * i))}] "
            f'"GET {path} HTTP/1.1" 200 12 "-" "test"\n'
            for i, path in enumerate(paths)
        )
    )
    plan_file = tmp_path / "mix.yaml"
    assert (
        main(
            [
                "import",
                "access-log",
                str(log),
                "--target",
                server.url,
                "--rate",
                "500/s",
                "--out",
                str(plan_file),
            ]
        )
        == 0
    )
    replay(plan_file, duration="2s")
    seen = shares(server.requests_by_path)
    for path, share in shares(source).items():
        assert seen[path] == pytest.approx(share, abs=0.02)
    assert server.requests_total == 1000


def test_import_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.har"
    bad.write_text("{not json")
    assert main(["import", "har", str(bad)]) == 2
    assert "bad.har: line 1, column 2: not valid JSON" in capsys.readouterr().err
