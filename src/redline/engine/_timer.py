"""A wake-up at a precise moment for the event loop: a Linux timerfd.

The loop's own timers have millisecond resolution, and an open model at 20,000 req/s has
an arrival every 50 us. Waiting for one by polling the loop keeps a core busy whether or
not there is work; a timerfd armed at the next arrival's absolute time (CLOCK_MONOTONIC,
the clock of :func:`time.monotonic_ns`) makes the loop sleep in epoll until then, and
wake within microseconds. Python 3.11 has no ``os.timerfd_*`` (3.13 does), so the two
system calls go through ctypes; where there is no timerfd, :func:`precise_timer` says so
and the caller keeps its fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import sys
import time
from collections.abc import Callable

__all__ = ["PreciseTimer", "precise_timer"]

_CLOCK_MONOTONIC = 1
_TFD_NONBLOCK = os.O_NONBLOCK
_TFD_CLOEXEC = getattr(os, "O_CLOEXEC", 0o2000000)
_TFD_TIMER_ABSTIME = 1


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.timerfd_create.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.timerfd_settime.argtypes = [
            ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Itimerspec), ctypes.c_void_p,
        ]  # fmt: skip
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


class PreciseTimer:
    """Calls ``callback`` on the loop once the monotonic clock reaches the armed time."""

    __slots__ = ("_armed", "_callback", "_every", "_fd", "_loop", "_set", "_spec")

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
        """Create the timerfd and watch it (use :func:`precise_timer`)."""
        assert _LIBC is not None
        fd = _LIBC.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create failed")
        self._fd = fd
        self._loop = loop
        self._callback = callback
        self._spec = _Itimerspec()
        self._set = _LIBC.timerfd_settime
        self._armed = 0
        self._every = 0
        loop.add_reader(fd, self._fired)

    def arm(self, at_ns: int) -> None:
        """Wake once at ``at_ns`` (monotonic ns; a time past wakes at once)."""
        if at_ns == self._armed and not self._every:
            return
        self._settime(at_ns, 0)

    def every(self, interval_ns: int) -> None:
        """Wake every ``interval_ns`` from now on, until :meth:`arm` is called.

        Setting a timer is a system call that a virtual machine may pay dearly for (it
        reprograms the host's timer); a periodic one is set once for many wakes.
        """
        if self._every == interval_ns:
            return
        self._settime(time.monotonic_ns() + interval_ns, interval_ns)

    def _settime(self, at_ns: int, interval_ns: int) -> None:
        self._armed, self._every = at_ns, interval_ns
        spec = self._spec
        spec.it_value.tv_sec, spec.it_value.tv_nsec = divmod(max(at_ns, 1), 1_000_000_000)
        spec.it_interval.tv_sec, spec.it_interval.tv_nsec = divmod(interval_ns, 1_000_000_000)
        self._set(self._fd, _TFD_TIMER_ABSTIME, ctypes.byref(spec), None)

    def _fired(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self._fd, 8)  # the expiry count: reading clears it
        if not self._every:
            self._armed = 0
        self._callback()

    def close(self) -> None:
        """Stop watching and close the timerfd (idempotent)."""
        if self._fd < 0:
            return
        with contextlib.suppress(Exception):
            self._loop.remove_reader(self._fd)
        os.close(self._fd)
        self._fd = -1


def precise_timer(
    loop: asyncio.AbstractEventLoop, callback: Callable[[], None]
) -> PreciseTimer | None:
    """A :class:`PreciseTimer` on ``loop``, or None where the system has no timerfd."""
    if _LIBC is None or os.environ.get("REDLINE_NO_TIMERFD"):
        return None
    try:
        return PreciseTimer(loop, callback)
    except OSError:
        return None
