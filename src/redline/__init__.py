"""redline: performance engineering as code.

Measure a service honestly under load, judge it against its objectives, find where it
breaks, and prove that a change raised its redline::

    import redline

    outcome = redline.run("examples/shop.yaml", out="result.json")
    print(outcome.passed, outcome.result.total().latency_ms["p99"])

The names below are the public surface; the subpackages (``redline.resilience``,
``redline.cache``, ``redline.analysis``, ...) hold the rest. They are imported on first
use, so that ``import redline.resilience`` in a service does not load the load engine.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("redline")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

if TYPE_CHECKING:
    from redline.analysis import compare_runs as compare_runs
    from redline.analysis import evaluate as evaluate
    from redline.core import Observer as Observer
    from redline.core import RedlineError as RedlineError
    from redline.core import RunOutcome as RunOutcome
    from redline.core import RunResult as RunResult
    from redline.plan import Plan as Plan
    from redline.plan import load_plan as load_plan
    from redline.runner import RunControl as RunControl
    from redline.runner import ab as ab
    from redline.runner import experiment as experiment
    from redline.runner import find as find
    from redline.runner import find_async as find_async
    from redline.runner import run as run
    from redline.runner import run_async as run_async
    from redline.runner import sweep as sweep
    from redline.store import RunStore as RunStore
    from redline.store import open_store as open_store

_WHERE = {
    "Observer": "redline.core",
    "Plan": "redline.plan",
    "RedlineError": "redline.core",
    "RunControl": "redline.runner",
    "RunOutcome": "redline.core",
    "RunResult": "redline.core",
    "RunStore": "redline.store",
    "ab": "redline.runner",
    "compare_runs": "redline.analysis",
    "evaluate": "redline.analysis",
    "experiment": "redline.runner",
    "find": "redline.runner",
    "find_async": "redline.runner",
    "load_plan": "redline.plan",
    "open_store": "redline.store",
    "run": "redline.runner",
    "run_async": "redline.runner",
    "sweep": "redline.runner",
}

__all__ = ["__version__", *sorted(_WHERE)]


def __getattr__(name: str) -> Any:
    """Import a public name from its package on first use."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'redline' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
