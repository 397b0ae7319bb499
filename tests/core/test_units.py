from __future__ import annotations

import pytest

from redline.core import format_duration, parse_duration, parse_rate, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10s", 10.0),
        ("250ms", 0.25),
        ("1m30s", 90.0),
        ("2h", 7200.0),
        ("500us", 0.0005),
        (3, 3.0),
        (0.5, 0.5),
    ],
)
def test_parse_duration_accepts_units(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "10", "ten seconds", "-1s", "1x", True, None, -2, [1]])
def test_parse_duration_rejects_with_the_value_quoted(bad: object) -> None:
    with pytest.raises(ValueError, match="expected"):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("text", "rate"),
    [("500/s", 500.0), ("60/m", 1.0), ("3600/h", 1.0), (250, 250.0), ("12.5/s", 12.5)],
)
def test_parse_rate(text: object, rate: float) -> None:
    assert parse_rate(text) == pytest.approx(rate)


def test_parse_rate_error_quotes_like_the_issue_example() -> None:
    with pytest.raises(ValueError, match='expected a positive rate like "500/s", got "-3"'):
        parse_rate("-3")


@pytest.mark.parametrize("bad", ["0/s", 0, "fast", "5/day", False])
def test_parse_rate_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match="positive rate"):
        parse_rate(bad)


def test_parse_size() -> None:
    assert parse_size("64KiB") == 65536
    assert parse_size("1MB") == 1_000_000
    assert parse_size(12) == 12
    with pytest.raises(ValueError, match="size"):
        parse_size("-1")


def test_format_duration_is_compact() -> None:
    assert format_duration(0.25) == "250ms"
    assert format_duration(90) == "1m30s"
    assert format_duration(5) == "5s"
    assert format_duration(0.99999) == "1s"  # not "1e+03ms"
    assert format_duration(0.0009999) == "1ms"
