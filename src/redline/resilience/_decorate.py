"""One way for every strategy to decorate an async function."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

__all__ = ["decorate"]

P = ParamSpec("P")
T = TypeVar("T")


def decorate(
    call: Callable[..., Awaitable[T]], fn: Callable[P, Awaitable[T]]
) -> Callable[P, Awaitable[T]]:
    """``fn`` wrapped so that each call goes through ``call(fn, *args, **kwargs)``."""

    @functools.wraps(fn)
    async def wrapped(*args: P.args, **kwargs: P.kwargs) -> T:
        return await call(fn, *args, **kwargs)

    return wrapped
