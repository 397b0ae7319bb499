"""The root of redline's exceptions, in a module that imports nothing.

Every package raises under :class:`RedlineError`, the kit (``redline.resilience``,
``redline.cache``, ``redline.faults``) included, which import nothing else of redline's:
so this class lives here, not in ``redline.core`` (which needs numpy).
"""

from __future__ import annotations

__all__ = ["RedlineError"]


class RedlineError(Exception):
    """Base class of every error redline raises on purpose."""
