"""The fault proxy's exceptions share one base, under redline's own."""

from __future__ import annotations

from redline._errors import RedlineError

__all__ = ["FaultError"]


class FaultError(RedlineError):
    """A fault that cannot be made, applied or undone (a bad toxic, a proxy refused)."""
