"""Compression measured on the generator: Accept-Encoding sent, bodies decoded, wire
bytes against decoded bytes, decode time; request bodies compressed; over HTTP/1.1 and
HTTP/2, against a server that encodes with each codec's own library.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
from collections.abc import Iterator
from typing import Any

import brotli
import pytest
import zstandard
from h2server import H2Server  # tests/http is on the path (rootdir-less module)
from hypothesis import given
from hypothesis import strategies as st

from redline.core import PlanError
from redline.engine import run_plan
from redline.http import decode_body, encode_body
from redline.plan import plan_from_dict

BODY = json.dumps([{"id": i, "name": f"item {i}", "tags": ["a", "b"]} for i in range(800)]).encode()
_ENCODERS = {
    "gzip": gzip.compress,
    "br": brotli.compress,
    "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
}


class _Server:
    """HTTP/1.1 keep-alive server: answers BODY in the first encoding the client accepts
    that it knows; notes each request's Content-Encoding and its body decoded."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.request_bodies: list[tuple[str, bytes]] = []
        self.port = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                fields = {}
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    fields[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(fields.get("content-length", "0")))
                if body:
                    encoding = fields.get("content-encoding", "")
                    self.request_bodies.append((encoding, decode_body(encoding, body)))
                accepted = [e.strip() for e in fields.get("accept-encoding", "").split(",")]
                chosen = next((e for e in accepted if e in _ENCODERS), "")
                payload = _ENCODERS[chosen](BODY) if chosen else BODY
                extra = f"Content-Encoding: {chosen}\r\n" if chosen else ""
                writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {len(payload)}\r\n{extra}\r\n"
                             .encode() + payload)  # fmt: skip
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    def __enter__(self) -> _Server:
        self.thread.start()
        server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), self.loop
        ).result(10)
        self.port = server.sockets[0].getsockname()[1]
        self._server = server
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self._server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def server() -> Iterator[_Server]:
    with _Server() as running:
        yield running


def _run(url: str, **changes: Any) -> Any:
    data: dict[str, Any] = {
        "name": "zip", "target": url, "requests": [{"name": "items", "path": "/items"}],
        "load": {"rate": "50/s"}, "duration": "1s", "workers": 1,
    }  # fmt: skip
    data.update(changes)
    return run_plan(plan_from_dict(data, source="zip.yaml"))


def _metrics(result: Any) -> dict[str, Any]:
    return dict(result.metrics())


@pytest.mark.parametrize("encoding", ["gzip", "br", "zstd"])
def test_each_encoding_is_decoded_and_its_saving_counted(server: _Server, encoding: str) -> None:
    result = _run(f"http://127.0.0.1:{server.port}", compression={"accept": [encoding]})
    metrics = _metrics(result)
    wire = metrics["compression.wire_bytes"].total
    decoded = metrics["compression.decoded_bytes"].total
    assert metrics[f"compression.responses.{encoding}"].total == 50
    assert decoded == 50 * len(BODY)  # every body decoded back to the original
    assert wire == 50 * len(_ENCODERS[encoding](BODY))
    assert wire < decoded / 5  # repetitive JSON compresses well
    assert metrics["compression.decode_ms"].count == 50
    assert result.endpoint("items").errors == 0
    # bytes_in counts the wire: the compressed bodies and the heads
    assert wire < result.endpoint("items").bytes_in < wire + 50 * 200


def test_without_accept_nothing_is_compressed_nor_measured(server: _Server) -> None:
    result = _run(f"http://127.0.0.1:{server.port}")
    assert not any(name.startswith("compression.") for name in _metrics(result))
    assert result.endpoint("items").bytes_in > 50 * len(BODY)


def test_identity_answers_count_the_same_on_both_sides(server: _Server) -> None:
    result = _run(f"http://127.0.0.1:{server.port}", compression={"accept": ["deflate"]})
    metrics = _metrics(result)
    assert metrics["compression.responses.identity"].total == 50
    assert metrics["compression.wire_bytes"].total == metrics["compression.decoded_bytes"].total


def test_request_bodies_are_sent_compressed(server: _Server) -> None:
    body = json.dumps({"items": list(range(500))})
    _run(
        f"http://127.0.0.1:{server.port}",
        requests=[{"name": "post", "method": "POST", "path": "/items", "body": body}],
        compression={"request": "gzip"}, load={"rate": "10/s"},
    )  # fmt: skip
    assert len(server.request_bodies) == 10
    assert {(e, b) for e, b in server.request_bodies} == {("gzip", body.encode())}


def test_compression_over_h2() -> None:
    def gzipped(protocol: Any, stream_id: int, path: str, body: bytes) -> bool:
        protocol._respond(stream_id, 200, gzip.compress(BODY), **{"content-encoding": "gzip"})
        return True

    with H2Server(handler=gzipped) as h2:
        result = _run(f"http://127.0.0.1:{h2.port}", protocol="h2c",
                      compression={"accept": ["gzip"]})  # fmt: skip
    metrics = _metrics(result)
    assert metrics["compression.decoded_bytes"].total == 50 * len(BODY)
    assert metrics["compression.responses.gzip"].total == 50


def test_a_body_that_does_not_decode_is_an_error(server: _Server) -> None:
    def broken(protocol: Any, stream_id: int, path: str, body: bytes) -> bool:
        protocol._respond(stream_id, 200, b"not gzip at all", **{"content-encoding": "gzip"})
        return True

    with H2Server(handler=broken) as h2:
        result = _run(f"http://127.0.0.1:{h2.port}", protocol="h2c",
                      compression={"accept": ["gzip"]}, load={"rate": "10/s"})  # fmt: skip
    assert result.endpoint("items").error_classes == {"decode_error": 10}


@pytest.mark.parametrize(
    ("section", "where", "expected"),
    [
        ({"accept": ["lzma"]}, "compression.accept[0]", "expected one of gzip"),
        ({"request": "snappy"}, "compression.request", "expected one of gzip"),
        ({}, "compression", "expected accept"),
    ],
)
def test_bad_compression_sections_name_their_path(
    section: dict[str, Any], where: str, expected: str
) -> None:
    with pytest.raises(PlanError, match=expected) as caught:
        plan_from_dict({"target": "http://127.0.0.1:1", "requests": [{"path": "/"}],
                        "load": {"rate": "1/s"}, "duration": "1s", "compression": section},
                       source="zip.yaml")  # fmt: skip
    assert where in str(caught.value)


@given(st.binary(max_size=4096), st.sampled_from(["gzip", "deflate", "br", "zstd"]))
def test_encode_then_decode_is_the_identity(body: bytes, encoding: str) -> None:
    assert decode_body(encoding, encode_body(encoding, body)) == body
