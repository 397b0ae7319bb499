"""Content encodings: what compression costs and buys, measured on the generator.

A plan's ``compression: {accept: [gzip, br, zstd]}`` asks the target for compressed
responses; each response is then decoded as a client would (the time it takes is part
of its latency) and the worker's custom metrics count what crossed the wire against what
it decoded to:

- ``compression.wire_bytes`` and ``compression.decoded_bytes`` (counters): response
  bodies as received and as decoded (identity bodies count the same on both);
- ``compression.decode_ms`` (trend): the generator's time to decode one body;
- ``compression.responses.<encoding>`` (counters): responses by the encoding the target
  chose (``identity`` when it chose none).

gzip and deflate come with Python (zlib); ``br`` needs brotli and ``zstd`` zstandard
(the ``compression`` extra).
"""

from __future__ import annotations

import time
import zlib
from typing import Any

from redline.core import Counter, Trend

__all__ = ["ENCODINGS", "CompressionMeter", "decode_body", "encode_body", "encoding_missing"]

ENCODINGS = ("gzip", "deflate", "br", "zstd")
"""The content encodings redline can ask for and decode."""
_MODULES = {"br": "brotli", "zstd": "zstandard"}


def encoding_missing(name: str) -> str | None:
    """Why ``name`` cannot be used here (None: it can)."""
    if name not in ENCODINGS:
        return f"expected one of {', '.join(ENCODINGS)}, got {name!r}"
    module = _MODULES.get(name)
    if module is None:
        return None
    try:
        __import__(module)
    except ImportError:
        return f"{name} needs the {module} package: pip install 'redline[compression]'"
    return None


def decode_body(encoding: str, body: bytes) -> bytes:
    """``body`` decoded from ``encoding`` (``identity``: as it is).

    Raises:
        ValueError: an encoding redline does not know, or a body that does not decode.
    """
    try:
        if encoding in ("identity", ""):
            return body
        if encoding in ("gzip", "x-gzip"):
            return zlib.decompress(body, 16 + zlib.MAX_WBITS)
        if encoding == "deflate":
            try:
                return zlib.decompress(body)
            except zlib.error:  # raw deflate, as some servers send it
                return zlib.decompress(body, -zlib.MAX_WBITS)
        if encoding == "br":
            import brotli  # type: ignore[import-untyped]

            return bytes(brotli.decompress(body))
        if encoding == "zstd":
            import zstandard

            return bytes(zstandard.ZstdDecompressor().decompressobj().decompress(body))
    except Exception as exc:  # noqa: BLE001 - each codec raises its own kind
        raise ValueError(f"a {encoding} body that does not decode: {exc}") from None
    raise ValueError(f"an encoding redline does not decode: {encoding!r}")


def encode_body(encoding: str, body: bytes) -> bytes:
    """``body`` encoded as ``encoding`` (for request bodies)."""
    if encoding == "gzip":
        compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        return compressor.compress(body) + compressor.flush()
    if encoding == "deflate":
        return zlib.compress(body)
    if encoding == "br":
        import brotli

        return bytes(brotli.compress(body))
    if encoding == "zstd":
        import zstandard

        return bytes(zstandard.ZstdCompressor().compress(body))
    raise ValueError(f"an encoding redline does not encode: {encoding!r}")


class CompressionMeter:
    """Decodes response bodies and records the ``compression.*`` metrics of a worker."""

    def __init__(self) -> None:
        """The metrics, made (or reused) by name in this process."""
        self.wire = Counter("compression.wire_bytes")
        self.decoded = Counter("compression.decoded_bytes")
        self.decode_ms = Trend("compression.decode_ms")
        self.by_encoding: dict[str, Counter] = {}

    def response(self, encoding: str, body: bytes) -> str | None:
        """Decode and count one response body; the error class if it does not decode."""
        encoding = encoding.strip().lower() or "identity"
        counter = self.by_encoding.get(encoding)
        if counter is None:
            name = encoding if encoding.replace("-", "").isalnum() else "other"
            counter = self.by_encoding[encoding] = Counter(f"compression.responses.{name}")
        counter.add(1)
        self.wire.add(len(body))
        if encoding == "identity":
            self.decoded.add(len(body))
            return None
        start = time.perf_counter()
        try:
            decoded = decode_body(encoding, body)
        except ValueError:
            return "decode_error"
        self.decode_ms.add((time.perf_counter() - start) * 1000)
        self.decoded.add(len(decoded))
        return None


def content_encoding(fields: Any) -> str:
    """The Content-Encoding among ``(name, value)`` header fields (bytes), or ``""``."""
    for name, value in fields:
        if name.lower() == b"content-encoding":
            return bytes(value).decode("latin-1")
    return ""
