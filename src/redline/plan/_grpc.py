"""gRPC calls in a plan: a ``.proto`` compiled at plan load, messages from JSON templates.

A plan's ``grpc: {proto: echo.proto}`` is compiled by grpcio-tools' bundled protoc into a
FileDescriptorSet (bytes: what travels to the workers). A request ``grpc:
package.Service/Method`` with a ``message:`` becomes an HTTP/2 POST to
``/package.Service/Method`` (``content-type: application/grpc``, ``te: trailers``) whose
body is the message, rendered from its JSON template and encoded as protobuf, in gRPC's
length-prefixed frame. The HTTP/2 layer reads ``grpc-status`` from the trailers: a call
that ends with a status other than OK is an error of class ``grpc_<status>``
(``grpc_unavailable``, ``grpc_deadline_exceeded``...).

grpcio-tools and protobuf are the ``grpc`` extra.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["GrpcCall", "compile_proto", "decode_messages", "encode_message", "find_call"]


@dataclass(frozen=True, slots=True)
class GrpcCall:
    """One gRPC method a request calls, with what its messages need in a worker."""

    method: str
    """``package.Service/Method``."""
    input_type: str
    output_type: str
    descriptors: bytes
    """The serialized FileDescriptorSet of the plan's proto (and its imports)."""
    server_streaming: bool = False
    client_streaming: bool = False


def compile_proto(proto: Path, import_paths: list[Path]) -> bytes:
    """Compile ``proto`` (with its imports) to a serialized FileDescriptorSet.

    Raises:
        ValueError: protoc's own message (the file, line and column of the problem), or
            grpcio-tools is missing.
    """
    try:
        import grpc_tools  # type: ignore[import-untyped]
    except ImportError:
        raise ValueError(
            "gRPC plans compile their .proto with grpcio-tools: pip install 'redline[grpc]'"
        ) from None
    bundled = Path(grpc_tools.__file__).parent / "_proto"  # google/protobuf/*.proto
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.pb"
        includes = [f"-I{p}" for p in [proto.parent, *import_paths, bundled]]
        # a child process: protoc writes its errors to the C-level stderr
        done = subprocess.run(
            [sys.executable, "-m", "grpc_tools.protoc", *includes, "--include_imports",
             f"--descriptor_set_out={out}", str(proto)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if done.returncode != 0 or not out.exists():
            problem = (done.stderr or done.stdout).strip()
            raise ValueError(f"protoc could not compile {proto}: {problem}")
        return out.read_bytes()


def _pool(descriptors: bytes) -> Any:
    from google.protobuf import descriptor_pb2, descriptor_pool

    files = descriptor_pb2.FileDescriptorSet.FromString(descriptors)
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    return pool


def find_call(descriptors: bytes, method: str) -> GrpcCall:
    """The :class:`GrpcCall` of ``method`` (``package.Service/Method``).

    Raises:
        ValueError: no such service or method (the message lists what there is).
    """
    service_name, sep, method_name = method.partition("/")
    if not sep or not service_name or not method_name:
        raise ValueError(f'expected "package.Service/Method", got {method!r}')
    pool = _pool(descriptors)
    try:
        service = pool.FindServiceByName(service_name)
    except KeyError:
        services = sorted(
            f"{f.package + '.' if f.package else ''}{s.name}"
            for f in _file_protos(descriptors)
            for s in f.service
        )  # fmt: skip
        raise ValueError(
            f"no service {service_name!r} in the proto; it has {', '.join(services) or 'none'}"
        ) from None
    found = service.methods_by_name.get(method_name)
    if found is None:
        names = ", ".join(sorted(service.methods_by_name))
        raise ValueError(f"no method {method_name!r} in {service_name}; it has {names}")
    return GrpcCall(
        method=method,
        input_type=found.input_type.full_name,
        output_type=found.output_type.full_name,
        descriptors=descriptors,
        server_streaming=found.server_streaming,
        client_streaming=found.client_streaming,
    )


def _file_protos(descriptors: bytes) -> list[Any]:
    from google.protobuf import descriptor_pb2

    return list(descriptor_pb2.FileDescriptorSet.FromString(descriptors).file)


_classes: dict[tuple[bytes, str], Any] = {}


def _message_class(descriptors: bytes, name: str) -> Any:
    key = (descriptors, name)
    found = _classes.get(key)
    if found is None:
        from google.protobuf import message_factory

        found = _classes[key] = message_factory.GetMessageClass(
            _pool(descriptors).FindMessageTypeByName(name)
        )
    return found


def encode_message(call: GrpcCall, text: str) -> bytes:
    """The gRPC frame of the input message written as JSON ``text`` (protobuf's JSON form).

    For a client-streaming (or bidirectional) method, ``text`` may be a JSON array: its
    messages, one frame each, all sent before the call's end of stream.

    Raises:
        ValueError: ``text`` is not that message in JSON (the field named).
    """
    from google.protobuf import json_format

    if call.client_streaming and text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"not a JSON array of {call.input_type}: {exc}") from None
        return b"".join(encode_message(call, json.dumps(item)) for item in items)

    message = _message_class(call.descriptors, call.input_type)()
    try:
        json_format.Parse(text or "{}", message)
    except json_format.ParseError as exc:
        raise ValueError(f"not a {call.input_type} in JSON: {exc}") from None
    payload: bytes = message.SerializeToString()
    return struct.pack(">BI", 0, len(payload)) + payload


def decode_messages(call: GrpcCall, body: bytes) -> list[dict[str, Any]]:
    """The output messages of a response body (gRPC frames), as JSON-like dicts.

    Raises:
        ValueError: the body is not whole gRPC frames of the output type.
    """
    from google.protobuf import json_format
    from google.protobuf.message import DecodeError

    cls = _message_class(call.descriptors, call.output_type)
    out: list[dict[str, Any]] = []
    position = 0
    while position < len(body):
        if len(body) - position < 5:
            raise ValueError("a gRPC frame cut short")
        compressed, length = struct.unpack_from(">BI", body, position)
        if compressed:
            raise ValueError("a compressed gRPC message (no grpc-encoding was offered)")
        chunk = body[position + 5 : position + 5 + length]
        if len(chunk) != length:
            raise ValueError("a gRPC frame cut short")
        try:
            message = cls.FromString(chunk)
        except DecodeError as exc:
            raise ValueError(f"not a {call.output_type}: {exc}") from None
        out.append(json.loads(json_format.MessageToJson(message, preserving_proto_field_name=True)))
        position += 5 + length
    return out
