"""A base for things that hold a resource until :meth:`close`, usable in ``with``."""

from __future__ import annotations

from types import TracebackType
from typing import Self

__all__ = ["Closing"]


class Closing:
    """``with thing:`` closes the thing at the end of the block; subclasses define close."""

    def close(self) -> None:
        """Release what is held (subclasses say what)."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
