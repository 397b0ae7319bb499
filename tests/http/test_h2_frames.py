"""redline's HTTP/2 framing: HPACK blocks against the hpack decoder, requests turned into
HTTP/2 fields, and fuzzed frames from a misbehaving server ending in classified errors.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

from h2server import ScriptedServer  # tests/http is on the path (rootdir-less module)
from hpack import Decoder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redline.http import H2Pool
from redline.http._h2 import PREFACE
from redline.http._hpack import ResponseBlocks, encode_block, request_parts

_token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-0123456789", min_size=1, max_size=20)
_value = st.binary(max_size=60).filter(lambda v: b"\r" not in v and b"\n" not in v)


@given(st.lists(st.tuples(_token.map(str.encode), _value), max_size=12))
def test_request_blocks_decode_to_what_was_encoded(fields: list[tuple[bytes, bytes]]) -> None:
    pseudo = [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/"),
              (b":authority", b"example.test")]  # fmt: skip
    block = encode_block(pseudo + fields)
    decoder = Decoder()
    assert [(bytes(n), bytes(v)) for n, v in decoder.decode(block, raw=True)] == pseudo + fields
    assert len(decoder.header_table.dynamic_entries) == 0  # nothing indexed: stateless


def test_an_http1_request_becomes_http2_fields() -> None:
    data = (
        b"POST /items?x=1 HTTP/1.1\r\nHost: shop.test:8080\r\nConnection: keep-alive\r\n"
        b"Content-Type: application/json\r\nTE: trailers\r\nContent-Length: 2\r\n\r\n{}"
    )
    fields, body = request_parts(data, b"http")
    assert fields == [
        (b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/items?x=1"),
        (b":authority", b"shop.test:8080"), (b"content-type", b"application/json"),
        (b"te", b"trailers"), (b"content-length", b"2"),
    ]  # fmt: skip
    assert body == b"{}"


def test_repeated_response_blocks_decode_from_memory_only_while_the_table_holds() -> None:
    from hpack import Encoder

    encoder = Encoder()
    blocks = ResponseBlocks()
    first = encoder.encode([(":status", "200"), ("server", "x")])  # indexes "server: x"
    again = encoder.encode([(":status", "200"), ("server", "x")])  # now one indexed byte each
    assert blocks.decode(first) == ([(b":status", b"200"), (b"server", b"x")], 200)
    assert blocks.decode(again)[1] == 200
    assert again in blocks._cache  # the table did not change: remembered
    blocks.decode(encoder.encode([(":status", "404"), ("server", "y")]))  # indexes more
    assert again not in blocks._cache  # the table changed: forgotten


def _frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack(">I B I", len(payload) << 8 | kind, flags, stream) + payload


_SETTINGS = _frame(4, 0, 0, b"")
_frames = st.one_of(
    st.tuples(
        st.integers(0, 12),
        st.integers(0, 255),
        st.sampled_from([0, 1, 2, 3, 5, 7, 2**31 - 1]),
        st.binary(max_size=24),
    ),
    st.tuples(
        st.just(1),
        st.sampled_from([4, 5, 0x24, 0x2C]),
        st.sampled_from([1, 3, 5]),
        st.sampled_from(
            [
                b"\x88",
                b"\x8d",
                b"\x48\x03200",
                b"\x08\x03999",
                b"\xbe",
                b"\x20\x88",
                b"\x3f\xe1\x1f",
            ]
        ),
    ),
    st.tuples(
        st.just(0),
        st.sampled_from([0, 1, 8, 9]),
        st.sampled_from([1, 3, 5]),
        st.binary(max_size=30),
    ),
    st.tuples(
        st.sampled_from([3, 7, 8]),
        st.just(0),
        st.sampled_from([0, 1, 3]),
        st.sampled_from(
            [b"\x00\x00\x00\x07", b"\x00\x00\x00\x00\x00\x00\x00\x02", b"\x7f\xff\xff\xff", b"\x00"]
        ),
    ),
)

_KNOWN = {"read_timeout", "closed", "reset", "protocol", "too_large", "transport"}


class _Listener:
    def __init__(self) -> None:
        self.completed = 0
        self.failed: list[str] = []
        self.connect_failures: list[str] = []
        self.sent = 0

    def response_complete(self, conn: Any, status: int, nbytes: int) -> None:
        assert 200 <= status <= 599
        self.completed += 1

    def request_failed(self, conn: Any, error_class: str) -> None:
        self.failed.append(error_class)

    def connection_ready(self, conn: Any) -> None:
        self.sent += 1
        conn.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n", 0, 0, 0)

    def connect_failed(self, error_class: str) -> None:
        self.connect_failures.append(error_class)


async def _exchange(port: int) -> tuple[_Listener, list[dict[str, Any]]]:
    loop = asyncio.get_running_loop()
    problems: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: problems.append(context))
    listener = _Listener()
    pool = H2Pool(listener, host="127.0.0.1", port=port, read_timeout=0.25,
                  connect_timeout=0.5, max_streams=3)  # fmt: skip
    for _ in range(3):
        pool.grow()
    deadline = loop.time() + 3
    while loop.time() < deadline:
        await asyncio.sleep(0.05)
        pool.sweep_timeouts()
        settled = listener.completed + len(listener.failed)
        if (settled == listener.sent and listener.sent) or len(listener.connect_failures) == 3:
            break
    await pool.aclose()
    return listener, problems


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_frames, max_size=8), st.booleans())
def test_fuzzed_frames_end_in_classified_errors_never_a_crash_or_hang(
    frames: list[tuple[int, int, int, bytes]], settings_first: bool
) -> None:
    fuzzed = b"".join(_frame(*f) for f in frames)
    state = {"settings": False, "frames": False}

    def script(seen: bytes) -> bytes:
        """SETTINGS after the preface, the fuzzed frames once the first request came
        (or, without SETTINGS, the fuzzed frames at once)."""
        if not seen.startswith(PREFACE):
            return b""
        if not settings_first:
            if state["frames"]:
                return b""
            state["frames"] = True
            return fuzzed
        out = b""
        if not state["settings"]:
            state["settings"] = True
            out += _SETTINGS
        if not state["frames"] and b"\x01\x05\x00\x00\x00\x01" in seen:
            state["frames"] = True
            out += fuzzed
        return out

    with ScriptedServer(script) as server:
        listener, problems = asyncio.run(_exchange(server.port))
    assert not problems, problems  # nothing escaped into the event loop
    # every request sent ended exactly once, and every failure has a known class
    assert listener.completed + len(listener.failed) == listener.sent
    for error_class in listener.failed + listener.connect_failures:
        assert error_class.startswith("h2_") or error_class in _KNOWN | {"connect_timeout"}
    if not settings_first and not fuzzed.startswith(_SETTINGS):
        assert listener.sent == 0  # no request goes out before the server's SETTINGS


def test_a_clean_response_after_settings_completes() -> None:
    """The fuzz's baseline: SETTINGS, then HEADERS(:status 200) + DATA end the request."""
    script = _SETTINGS + _frame(1, 4, 1, b"\x88") + _frame(0, 1, 1, b"ok")
    sent = False

    def once(seen: bytes) -> bytes:
        nonlocal sent
        if seen.startswith(PREFACE) and b"\x01\x05\x00\x00\x00\x01" in seen and not sent:
            sent = True
            return script
        return b"" if sent else (_SETTINGS if seen.startswith(PREFACE) else b"")

    with ScriptedServer(once) as server:
        listener, problems = asyncio.run(_exchange(server.port))
    assert not problems
    assert listener.completed >= 1
