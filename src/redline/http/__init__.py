"""Raw HTTP/1.1 and HTTP/2: client protocol, connections and pools; the servers' parser.

Sans-IO encoding and parsing, callback-driven keep-alive connections, the pools the
engine drives (HTTP/2 streams lent as if connections), the one request parser of
redline's own servers, and ``parse_address``.
"""

from ._connection import PHASE_EVERY as PHASE_EVERY
from ._connection import REUSED as REUSED
from ._connection import ClientConnection as ClientConnection
from ._connection import ConnectionPool as ConnectionPool
from ._connection import PoolListener as PoolListener
from ._connection import classify_os_error as classify_os_error
from ._connection import permitted as permitted
from ._encoding import ENCODINGS as ENCODINGS
from ._encoding import CompressionMeter as CompressionMeter
from ._encoding import decode_body as decode_body
from ._encoding import encode_body as encode_body
from ._encoding import encoding_missing as encoding_missing
from ._h2 import GRPC_STATUS as GRPC_STATUS
from ._h2 import H2_ERRORS as H2_ERRORS
from ._h2 import H2Connection as H2Connection
from ._h2 import H2Pool as H2Pool
from ._h2 import H2Stream as H2Stream
from ._h2 import connection_pool as connection_pool
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
    "ENCODINGS",
    "GRPC_STATUS",
    "H2_ERRORS",
    "PHASE_EVERY",
    "REUSED",
    "CapturingResponseParser",
    "ClientConnection",
    "CompressionMeter",
    "ConnectionPool",
    "H2Connection",
    "H2Pool",
    "H2Stream",
    "PoolListener",
    "Request",
    "RequestParser",
    "ResponseParser",
    "classify_os_error",
    "connection_pool",
    "decode_body",
    "encode_body",
    "encode_multipart",
    "encode_request",
    "encoding_missing",
    "is_loopback",
    "parse_address",
    "parse_head",
    "permitted",
]
