from __future__ import annotations

from typing import Any

import pytest

from redline.plan import Plan, plan_from_dict


def make_plan(url: str, **changes: Any) -> Plan:
    """A plan against ``url`` with short defaults, for end-to-end tests."""
    data: dict[str, Any] = {
        "name": "it",
        "target": url,
        "requests": [{"name": "get", "path": "/"}],
        "load": {"rate": "200/s"},
        "duration": "1s",
        "workers": 1,
        "seed": 1,
    }
    data.update(changes)
    return plan_from_dict(data, source="test")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in item.path.parts:
            item.add_marker(pytest.mark.integration)
