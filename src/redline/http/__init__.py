"""A raw HTTP/1.1 client: sans-IO encoding/parsing, callback connections, pools."""

from ._connection import ClientConnection as ClientConnection
from ._connection import ConnectionPool as ConnectionPool
from ._connection import PoolListener as PoolListener
from ._connection import classify_os_error as classify_os_error
from ._protocol import CapturingResponseParser as CapturingResponseParser
from ._protocol import ResponseParser as ResponseParser
from ._protocol import encode_request as encode_request
from ._protocol import parse_head as parse_head

__all__ = [
    "CapturingResponseParser",
    "ClientConnection",
    "ConnectionPool",
    "PoolListener",
    "ResponseParser",
    "classify_os_error",
    "encode_request",
    "parse_head",
]
