"""The exception hierarchy shared by every redline package."""

from __future__ import annotations

__all__ = [
    "BlockedError",
    "ConnectError",
    "ConnectTimeoutError",
    "DataExhaustedError",
    "PlanError",
    "ProtocolError",
    "ReadTimeoutError",
    "RedlineError",
    "ResponseTooLargeError",
    "RunError",
    "StoreError",
    "TransportError",
]


from redline._errors import RedlineError


class PlanError(RedlineError, ValueError):
    """A plan (or command-line override) is malformed.

    The message is path-qualified: ``plan.yaml: load.stages[2].rate: expected ...``.
    """

    def __init__(self, message: str, *, source: str = "<plan>", path: str = "") -> None:
        self.source = source
        self.path = path
        self.detail = message
        where = f"{source}: {path}: " if path else f"{source}: "
        super().__init__(where + message)


class RunError(RedlineError):
    """A run could not be carried out (target unreachable, generator limited...)."""


class StoreError(RedlineError):
    """The run store cannot be opened, read or written (or holds no such run)."""


class TransportError(RedlineError):
    """A request failed below HTTP: connecting, reading, or parsing the response.

    ``error_class`` is the stable short name recorded in run results.
    """

    error_class = "transport"


class ConnectError(TransportError):
    """The connection was refused or could not be established."""

    error_class = "connect_refused"


class BlockedError(TransportError):
    """The plan's ``allow:``/``block:`` lists refuse the connection (after resolution)."""

    error_class = "blocked"


class ConnectTimeoutError(TransportError):
    """The connection was not established within the connect timeout."""

    error_class = "connect_timeout"


class ReadTimeoutError(TransportError):
    """The response did not complete within the read timeout."""

    error_class = "read_timeout"


class ProtocolError(TransportError):
    """The peer sent something that is not valid HTTP/1.1."""

    error_class = "protocol"


class ResponseTooLargeError(TransportError):
    """The response exceeded the configured maximum size."""

    error_class = "too_large"


class DataExhaustedError(RedlineError):
    """A data source with ``mode: unique`` has no unused row left."""

    error_class = "data_exhausted"
