"""A Grafana dashboard for the metrics of :class:`~redline.observe.RunMetrics`."""

from __future__ import annotations

from typing import Any

__all__ = ["grafana_dashboard"]

_SELECTOR = 'plan=~"$plan"'
_RATE = "$__rate_interval"


def _panel(
    index: int, title: str, targets: list[tuple[str, str]], *, unit: str, width: int = 12
) -> dict[str, Any]:
    return {
        "id": index + 1,
        "type": "timeseries",
        "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": width, "x": (index % 2) * 12, "y": (index // 2) * 8},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + n), "expr": expr, "legendFormat": legend}
            for n, (expr, legend) in enumerate(targets)
        ],
    }


def grafana_dashboard(*, title: str = "redline run") -> dict[str, Any]:
    """The dashboard as data (JSON for Grafana's import), one plan chosen at a time."""
    bucket = f"redline_request_duration_seconds_bucket{{{_SELECTOR}}}"
    quantiles = [
        (
            f"histogram_quantile({q}, sum by (le, endpoint) (rate({bucket}[{_RATE}])))",
            f"p{p} {{{{endpoint}}}}",
        )
        for q, p in ((0.5, "50"), (0.99, "99"))
    ]
    panels = [
        _panel(
            0,
            "Requests per second by endpoint",
            [
                (
                    f"sum by (endpoint) (rate(redline_requests_total{{{_SELECTOR}}}[{_RATE}]))",
                    "{{endpoint}}",
                )
            ],
            unit="reqps",
        ),
        _panel(
            1,
            "Error ratio by endpoint",
            [
                (
                    f"sum by (endpoint) (rate(redline_errors_total{{{_SELECTOR}}}[{_RATE}])) / "
                    f"sum by (endpoint) (rate(redline_requests_total{{{_SELECTOR}}}[{_RATE}]))",
                    "{{endpoint}}",
                )
            ],
            unit="percentunit",
        ),
        _panel(2, "Latency from intended start (p50, p99)", quantiles, unit="s"),
        _panel(
            3,
            "Target and achieved rate",
            [
                (f"redline_target_rate{{{_SELECTOR}}}", "target"),
                (f"redline_achieved_rate{{{_SELECTOR}}}", "achieved"),
            ],
            unit="reqps",
        ),
        _panel(4, "In flight", [(f"redline_in_flight{{{_SELECTOR}}}", "in flight")], unit="short"),
    ]
    return {
        "title": title,
        "uid": "redline-run",
        "schemaVersion": 39,
        "editable": True,
        "time": {"from": "now-30m", "to": "now"},
        "refresh": "5s",
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus"},
                {
                    "name": "plan",
                    "type": "query",
                    "datasource": {"type": "prometheus", "uid": "${datasource}"},
                    "query": "label_values(redline_run_info, plan)",
                    "refresh": 2,
                    "includeAll": True,
                    "multi": True,
                },
            ]
        },
        "panels": panels,
    }
