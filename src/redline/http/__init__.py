"""Raw HTTP/1.1: client protocol, connections and pools; the servers' request parser.

Sans-IO encoding and parsing, callback-driven keep-alive connections, the pool the
engine drives, the one request parser of redline's own servers, and ``parse_address``.
"""

from ._connection import PHASE_EVERY as PHASE_EVERY
from ._connection import REUSED as REUSED
from ._connection import ClientConnection as ClientConnection
from ._connection import ConnectionPool as ConnectionPool
from ._connection import PoolListener as PoolListener
from ._connection import classify_os_error as classify_os_error
from ._connection import permitted as permitted
from ._protocol import CapturingResponseParser as CapturingResponseParser
from ._protocol import ResponseParser as ResponseParser
from ._protocol import encode_multipart as encode_multipart
from ._protocol import encode_request as encode_request
from ._protocol import parse_head as parse_head
from ._server import Request as Request
from ._server import RequestParser as RequestParser
from ._server import is_loopback as is_loopback
from ._server import parse_address as parse_address

__all__ = [
    "PHASE_EVERY",
    "REUSED",
    "CapturingResponseParser",
    "ClientConnection",
    "ConnectionPool",
    "PoolListener",
    "Request",
    "RequestParser",
    "ResponseParser",
    "classify_os_error",
    "encode_multipart",
    "encode_request",
    "is_loopback",
    "parse_address",
    "parse_head",
    "permitted",
]
