from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from redline.core import ProtocolError, ResponseTooLargeError, TransportError
from redline.http import ResponseParser, encode_request

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
CHUNKED = (
    b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
)
CLOSE = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


def test_encode_request_adds_host_agent_and_length() -> None:
    data = encode_request(
        "POST", "/x?y=1", host="127.0.0.1:8080", headers=[("X-A", "1")], body=b"{}"
    )
    head, body = data.split(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /x?y=1 HTTP/1.1"
    assert "Host: 127.0.0.1:8080" in lines
    assert "X-A: 1" in lines
    assert "Content-Length: 2" in lines
    assert any(line.startswith("User-Agent: redline/") for line in lines)
    assert body == b"{}"


def test_encode_request_keeps_a_given_host() -> None:
    data = encode_request("GET", "/", host="a", headers=[("Host", "b")])
    assert b"Host: b\r\n" in data
    assert b"Host: a" not in data
    assert b"Content-Length" not in data


def test_parses_content_length_chunked_and_close() -> None:
    parser = ResponseParser()
    assert parser.feed(OK) == [(200, True)]
    assert parser.feed(CHUNKED) == [(201, True)]
    assert parser.feed(CLOSE) == [(503, False)]


@given(st.data())
def test_any_split_of_the_stream_gives_the_same_responses(data: st.DataObject) -> None:
    stream = OK + CHUNKED + OK
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    parser = ResponseParser()
    seen = []
    previous = 0
    for cut in [*cuts, len(stream)]:
        seen.extend(parser.feed(stream[previous:cut]))
        previous = cut
    assert seen == [(200, True), (201, True), (200, True)]


def test_too_large_response_is_an_error() -> None:
    parser = ResponseParser(max_size=100)
    with pytest.raises(ResponseTooLargeError):
        parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 200)


def test_size_limit_is_per_response() -> None:
    parser = ResponseParser(max_size=len(OK))
    for _ in range(5):
        assert parser.feed(OK) == [(200, True)]


def test_garbage_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        ResponseParser().feed(b"SSH-2.0-OpenSSH\r\n\r\n")


@given(st.binary(max_size=300))
def test_fuzz_any_bytes_end_in_responses_or_a_transport_error(blob: bytes) -> None:
    parser = ResponseParser(max_size=1000)
    try:
        result = parser.feed(blob)
    except TransportError:
        return
    assert all(100 <= status <= 999 for status, _ in result)


@given(st.lists(st.binary(max_size=60), max_size=6))
def test_fuzz_valid_prefix_then_noise(chunks: list[bytes]) -> None:
    parser = ResponseParser(max_size=10_000)
    assert parser.feed(OK) == [(200, True)]
    try:
        for chunk in chunks:
            parser.feed(chunk)
    except TransportError as exc:
        error_class = exc.error_class
    else:
        return
    assert error_class in ("protocol", "too_large")
