"""Parsing of human-written durations, rates and sizes ("250ms", "500/s", "1MiB")."""

from __future__ import annotations

import json
import math
import re

__all__ = ["format_duration", "parse_duration", "parse_rate", "parse_size"]

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(us|µs|ms|s|m|h)")
_DURATION_UNITS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*(s|sec|second|m|min|minute|h|hour))?\s*$")
_RATE_UNITS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 1 / 60,
    "min": 1 / 60,
    "minute": 1 / 60,
    "h": 1 / 3600,
    "hour": 1 / 3600,
}
# k, m, g alone are binary, as docker reads them (256M); Ki, Mi, Gi as Kubernetes writes them
_SIZE = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|ki|k|mb|mib|mi|m|gb|gib|gi|g)?\s*$", re.IGNORECASE
)
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
    "k": 1024,
    "ki": 1024,
    "m": 1024**2,
    "mi": 1024**2,
    "g": 1024**3,
    "gi": 1024**3,
}


def _show(value: object) -> str:
    return json.dumps(value) if isinstance(value, str) else repr(value)


def parse_duration(value: object) -> float:
    """Parse a duration into seconds.

    Accepts a non-negative number of seconds or a string of unit parts such as
    ``"1m30s"``, ``"250ms"`` or ``"2h"``.

    Raises:
        ValueError: when ``value`` is not a non-negative duration.
    """
    if isinstance(value, bool):
        raise ValueError(f'expected a duration like "10s", got {_show(value)}')
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        pos = 0
        seconds = 0.0
        for match in _DURATION_PART.finditer(text):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
            pos = match.end()
        if pos != len(text) or not text:
            raise ValueError(f'expected a duration like "10s" or "1m30s", got {_show(value)}')
    else:
        raise ValueError(f'expected a duration like "10s", got {_show(value)}')
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f'expected a non-negative duration like "10s", got {_show(value)}')
    return seconds


def parse_rate(value: object) -> float:
    """Parse an arrival rate into requests per second (``"500/s"``, ``"30/m"``, ``1000``).

    Raises:
        ValueError: when ``value`` is not a positive, finite rate.
    """
    rate: float
    if isinstance(value, bool):
        raise ValueError(f'expected a positive rate like "500/s", got {_show(value)}')
    if isinstance(value, int | float):
        rate = float(value)
    elif isinstance(value, str) and (match := _RATE.match(value)):
        rate = float(match.group(1)) * _RATE_UNITS[match.group(2) or "s"]
    else:
        raise ValueError(f'expected a positive rate like "500/s", got {_show(value)}')
    if not math.isfinite(rate) or rate <= 0:
        raise ValueError(f'expected a positive rate like "500/s", got {_show(value)}')
    return rate


def parse_size(value: object) -> int:
    """Parse a size in bytes (``65536``, ``"64KiB"``, ``"1MB"``, ``"256M"``, ``"1Gi"``).

    ``k``, ``M`` and ``G`` alone are binary (as docker reads ``--memory 256M``), as are
    Kubernetes' ``Ki``, ``Mi``, ``Gi``; ``KB``, ``MB``, ``GB`` are decimal.

    Raises:
        ValueError: when ``value`` is not a non-negative size.
    """
    if isinstance(value, bool):
        raise ValueError(f'expected a size like "64KiB", got {_show(value)}')
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str) and (match := _SIZE.match(value)):
        unit = (match.group(2) or "b").lower()
        return int(float(match.group(1)) * _SIZE_UNITS[unit])
    raise ValueError(f'expected a size like "64KiB", got {_show(value)}')


def format_duration(seconds: float) -> str:
    """Format seconds compactly for people: ``"250ms"``, ``"1.5s"``, ``"2m30s"``."""
    # Thresholds sit where rounding to 3 digits would carry into the next unit.
    if seconds < 0.0009995:
        return f"{seconds * 1e6:.0f}us"
    if seconds < 0.9995:
        return f"{seconds * 1e3:.3g}ms"
    if seconds < 59.95:
        return f"{seconds:.3g}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest}s" if rest else f"{minutes}m"
