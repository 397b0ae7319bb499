"""Every error redline raises on purpose is a RedlineError; the kit's share a base each."""

from __future__ import annotations

import pytest

import redline.faults as faults
import redline.resilience as resilience
from redline.core import PlanError, RedlineError, RunError, StoreError, TransportError

RENAMED = {
    "BreakerOpen": "CircuitOpenError",
    "BulkheadFull": "BulkheadFullError",
    "RateLimited": "RateLimitedError",
    "Throttled": "ThrottledError",
    "Shed": "ShedError",
    "LimitExceeded": "LimitExceededError",
    "DeadlineExceeded": "DeadlineExceededError",
}


@pytest.mark.parametrize(("old", "new"), sorted(RENAMED.items()))
def test_the_kit_errors_end_in_error_and_the_old_names_still_work(old: str, new: str) -> None:
    error = getattr(resilience, new)
    assert getattr(resilience, old) is error
    assert issubclass(error, resilience.ResilienceError)
    assert issubclass(error, RedlineError)


def test_an_exceeded_deadline_is_still_a_timeout() -> None:
    assert issubclass(resilience.DeadlineExceededError, TimeoutError)
    with pytest.raises(TimeoutError):
        raise resilience.DeadlineExceededError("late")


def test_fault_errors_share_a_base() -> None:
    assert issubclass(faults.ProxyError, faults.FaultError)
    assert issubclass(faults.ToxicError, faults.FaultError)
    assert issubclass(faults.ToxicError, ValueError)  # a bad toxic is a bad value too
    assert issubclass(faults.FaultError, RedlineError)


@pytest.mark.parametrize("error", [PlanError, RunError, StoreError, TransportError])
def test_the_core_errors_are_redline_errors(error: type[Exception]) -> None:
    assert issubclass(error, RedlineError)


def test_every_exception_class_a_package_exports_is_a_redline_error() -> None:
    import importlib
    import pkgutil

    import redline

    # what a package exports as an exception is raised on purpose: one base catches it
    # all (the demo shop's errors are a sample service's own, not redline's)
    allowed = {"redline.demo._client"}
    for info in pkgutil.iter_modules(redline.__path__):
        if not info.ispkg:
            continue
        module = importlib.import_module(f"redline.{info.name}")
        for name in getattr(module, "__all__", ()):
            value = getattr(module, name)
            if isinstance(value, type) and issubclass(value, BaseException):
                assert issubclass(value, RedlineError) or value.__module__ in allowed, (
                    f"redline.{info.name}.{name}"
                )
