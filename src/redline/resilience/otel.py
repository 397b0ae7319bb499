"""OpenTelemetry metrics for the strategies (the ``otel`` extra: opentelemetry-api).

    from redline.resilience.otel import OpenTelemetryMetrics

    OpenTelemetryMetrics().watch()   # every strategy, through the global meter provider

The instruments carry the names of :mod:`redline.resilience._metrics` with dots
(``redline.resilience.calls``, ``redline.resilience.call_duration`` in seconds, ...).
"""

from __future__ import annotations

from typing import Any

from opentelemetry import metrics

from ._metrics import FAMILIES, MetricsListener

__all__ = ["OpenTelemetryMetrics"]


class OpenTelemetryMetrics(MetricsListener):
    """Every strategy's events as OpenTelemetry instruments of ``meter``."""

    def __init__(self, meter: metrics.Meter | None = None) -> None:
        """Create the instruments (on the global meter provider's meter by default)."""
        meter = meter or metrics.get_meter("redline.resilience")
        self._instruments: dict[str, Any] = {}
        self._attrs: dict[tuple[str, tuple[str, ...]], dict[str, str]] = {}
        for family, (kind, help_text, _) in FAMILIES.items():
            unit = "s" if family.endswith("_seconds") else "1"
            name = "redline.resilience." + family.removesuffix("_seconds")
            if kind == "counter":
                self._instruments[family] = meter.create_counter(name, unit, help_text)
            elif kind == "gauge":
                self._instruments[family] = meter.create_gauge(name, unit, help_text)
            else:
                self._instruments[family] = meter.create_histogram(name, unit, help_text)

    def _attributes(self, family: str, labels: tuple[str, ...]) -> dict[str, str]:
        attributes = self._attrs.get((family, labels))
        if attributes is None:
            names = ("strategy", "name", *FAMILIES[family][2])
            attributes = self._attrs[family, labels] = dict(zip(names, labels, strict=True))
        return attributes

    def _add(self, family: str, labels: tuple[str, ...], amount: float = 1.0) -> None:
        self._instruments[family].add(amount, self._attributes(family, labels))

    def _observe(self, family: str, labels: tuple[str, ...], value: float) -> None:
        self._instruments[family].record(value, self._attributes(family, labels))

    def _set(self, family: str, labels: tuple[str, ...], value: float) -> None:
        self._instruments[family].set(value, self._attributes(family, labels))
