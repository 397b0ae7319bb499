"""The kit's exceptions share one base, under redline's own."""

from __future__ import annotations

from redline._errors import RedlineError

__all__ = ["ResilienceError"]


class ResilienceError(RedlineError):
    """A strategy refused or ended a call (open breaker, full bulkhead, no token...).

    ``except ResilienceError`` catches what the kit raises on purpose, and only that.
    """
