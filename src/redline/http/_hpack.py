"""HPACK for a load generator: request blocks encoded once, response blocks decoded fast.

Requests are encoded without touching the encoder's dynamic table (every field is a
static-table index or a literal "without indexing", RFC 7541 section 6.2.2), so a block
is a pure function of its headers and is built once per distinct request. Responses are
decoded by hpack (the python-hyper HPACK library h2 uses); a response block whose
decoding left the decoder's dynamic table as it was is remembered, and the same bytes
are answered from memory while the table stays so (a server repeats its blocks: a
static file's headers are the same indexed bytes every time).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from hpack import Decoder
from hpack.exceptions import HPACKError
from hpack.table import HeaderTable

from redline.core import ProtocolError

__all__ = ["ResponseBlocks", "encode_block", "request_parts"]

_STATIC: dict[tuple[bytes, bytes], int] = {}
_STATIC_NAMES: dict[bytes, int] = {}
for _index, (_name, _value) in enumerate(HeaderTable.STATIC_TABLE, start=1):
    _STATIC.setdefault((_name, _value), _index)
    _STATIC_NAMES.setdefault(_name, _index)

_HOP_BY_HOP = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade",
     b"host")  # host becomes :authority
)  # fmt: skip


def _integer(value: int, prefix_bits: int, first: int) -> bytes:
    """An HPACK integer (RFC 7541 section 5.1) with ``first``'s high bits set."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first | value,))
    out = bytearray((first | limit,))
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _string(raw: bytes) -> bytes:
    return _integer(len(raw), 7, 0) + raw  # no Huffman: cheaper to build, same to parse


def encode_block(headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The HPACK block of ``headers`` (names lower-case), using no dynamic table."""
    out = bytearray()
    for name, value in headers:
        index = _STATIC.get((name, value))
        if index is not None:
            out += _integer(index, 7, 0x80)
            continue
        name_index = _STATIC_NAMES.get(name)
        if name_index is not None:
            out += _integer(name_index, 4, 0x00)
        else:
            out += b"\x00" + _string(name)
        out += _string(value)
    return bytes(out)


def request_parts(data: bytes, scheme: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """An encoded HTTP/1.1 request as HTTP/2 header fields and a body.

    The request line becomes ``:method``/``:path``, ``Host`` becomes ``:authority``,
    names are lower-cased, and the connection-specific fields HTTP/2 forbids are dropped
    (``TE`` is kept only as ``trailers``).

    Raises:
        ProtocolError: ``data`` is not an HTTP/1.1 request head.
    """
    end = data.find(b"\r\n\r\n")
    if end < 0:
        raise ProtocolError("not an HTTP/1.1 request: no end of head")
    lines = data[:end].split(b"\r\n")
    method, _, rest = lines[0].partition(b" ")
    path = rest.rpartition(b" ")[0] or rest
    authority = b""
    fields: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            raise ProtocolError(f"not an HTTP/1.1 header line: {line[:40]!r}")
        name = name.strip().lower()
        value = value.strip()
        if name == b"host":
            authority = value
        if name in _HOP_BY_HOP or (name == b"te" and value.lower() != b"trailers"):
            continue
        fields.append((name, value))
    pseudo = [(b":method", method), (b":scheme", scheme), (b":path", path or b"/")]
    if authority:
        pseudo.append((b":authority", authority))
    return pseudo + fields, data[end + 4 :]


class ResponseBlocks:
    """Decodes a connection's response header blocks, in order (the table is shared)."""

    __slots__ = ("_cache", "_decoder", "_entries", "_state")

    def __init__(self, max_header_list_size: int = 256 * 1024) -> None:
        """A decoder for one connection."""
        self._decoder = Decoder(max_header_list_size=max_header_list_size)
        table = self._decoder.header_table
        self._entries: deque[tuple[bytes, bytes]] = table.dynamic_entries
        self._cache: dict[bytes, tuple[list[tuple[bytes, bytes]], int]] = {}
        self._state = self._table_state()

    def _table_state(self) -> tuple[int, int, int]:
        entries = self._entries
        return len(entries), id(entries[0]) if entries else 0, self._decoder.header_table.maxsize

    def set_max_table_size(self, size: int) -> None:
        """What this side's SETTINGS_HEADER_TABLE_SIZE allows the peer."""
        self._decoder.max_allowed_table_size = size

    def decode(self, block: bytes) -> tuple[list[tuple[bytes, bytes]], int]:
        """The fields of ``block``, and the ``:status`` among them (0: none, or not 3 digits).

        Raises:
            ProtocolError: the block does not decode (an HTTP/2 COMPRESSION_ERROR).
        """
        cached = self._cache.get(block)
        if cached is not None:
            return cached
        try:
            fields = [(bytes(n), bytes(v)) for n, v in self._decoder.decode(block, raw=True)]
        except (HPACKError, IndexError, ValueError, UnicodeDecodeError) as exc:
            raise ProtocolError(f"HPACK: {exc}") from None
        status = 0
        for name, value in fields:
            if name == b":status":
                status = int(value) if len(value) == 3 and value.isdigit() else 0
                break
        decoded = (fields, status)
        state = self._table_state()
        if state != self._state:
            self._cache.clear()  # what was remembered was decoded against another table
            self._state = state
        elif len(self._cache) < 256:
            self._cache[block] = decoded
        return decoded
