"""The one server-side request parser, on bytes alone, and ``parse_address``."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from redline.core import ProtocolError
from redline.http import Request, RequestParser, parse_address

STREAM = (
    b"GET /a?x=1 HTTP/1.1\r\nHost: h\r\nX-Key: one\r\n\r\n"
    b"POST /orders HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
    b"PUT /chunked HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    b"GET /last HTTP/1.0\r\n\r\n"
)


def parse_in(pieces: list[bytes]) -> list[Request]:
    parser = RequestParser()
    out: list[Request] = []
    for piece in pieces:
        out.extend(parser.feed(piece))
    return out


def test_pipelined_requests_come_out_whole_and_in_order() -> None:
    first, second, third, last = parse_in([STREAM])
    assert (first.method, first.target, first.path, first.version) == ("GET", "/a?x=1", "/a", "1.1")
    assert first.header("x-key") == "one"
    assert first.header("missing") is None
    assert first.keep_alive
    assert first.first_line == "GET /a?x=1 HTTP/1.1"
    assert (second.method, second.body) == ("POST", b"hello")
    assert third.body == b"abc"  # de-chunked
    assert third.header("Transfer-Encoding") == "chunked"
    assert (last.version, last.keep_alive) == ("1.0", False)


@given(st.lists(st.integers(0, len(STREAM)), max_size=12))
def test_how_the_stream_is_cut_does_not_matter(cuts: list[int]) -> None:
    points = sorted({0, len(STREAM), *cuts})
    pieces = [STREAM[a:b] for a, b in itertools.pairwise(points)]
    assert parse_in(pieces) == parse_in([STREAM])


def test_garbage_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="malformed request"):
        RequestParser().feed(b"\x00\x01 not http\r\n\r\n")


@pytest.mark.parametrize(
    ("text", "default", "expected"),
    [
        ("127.0.0.1:8080", None, ("127.0.0.1", 8080)),
        ("[::1]:9000", None, ("::1", 9000)),
        ("localhost:0", None, ("localhost", 0)),
        ("9464", "127.0.0.1", ("127.0.0.1", 9464)),
        (":9464", "127.0.0.1", ("127.0.0.1", 9464)),
        ("0.0.0.0:1", "127.0.0.1", ("0.0.0.0", 1)),
    ],
)
def test_addresses_parse(text: str, default: str | None, expected: tuple[str, int]) -> None:
    assert parse_address(text, default_host=default) == expected


@pytest.mark.parametrize(
    ("text", "default"),
    [("8080", None), (":8080", None), ("host:", None), ("host:http", None),
     ("host:70000", "127.0.0.1"), ("", "127.0.0.1")],
)  # fmt: skip
def test_bad_addresses_say_what_was_expected(text: str, default: str | None) -> None:
    with pytest.raises(ValueError, match=r"expected (\[HOST:\]PORT|HOST:PORT) like"):
        parse_address(text, default_host=default)
