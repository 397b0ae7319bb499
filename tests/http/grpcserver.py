"""The echo gRPC service (tests/fixtures/grpc/echo.proto) on grpcio's asyncio server.

    python grpcserver.py PORT [--proto PATH]

Compiles the proto with grpcio-tools into a temporary folder, serves on 127.0.0.1:PORT,
prints ``ready`` and serves until killed. Used by the gRPC tests and benchmark as the
independent server.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
import tempfile
from pathlib import Path

import grpc
from grpc_tools import protoc

PROTO = Path(__file__).resolve().parents[1] / "fixtures" / "grpc" / "echo.proto"


def load_stubs(proto: Path, out: Path) -> tuple[object, object]:
    """Compile ``proto`` into ``out``; return its ``_pb2`` and ``_pb2_grpc`` modules."""
    code = protoc.main(["protoc", f"-I{proto.parent}", f"--python_out={out}",
                        f"--grpc_python_out={out}", str(proto)])  # fmt: skip
    if code != 0:
        raise SystemExit(f"protoc failed on {proto}")
    sys.path.insert(0, str(out))
    return importlib.import_module(proto.stem + "_pb2"), importlib.import_module(
        proto.stem + "_pb2_grpc"
    )


async def serve(port: int, proto: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        pb2, pb2_grpc = load_stubs(proto, Path(tmp))
        calls = 0

        class Echo(pb2_grpc.EchoServicer):  # type: ignore[attr-defined,name-defined,misc]
            async def Say(self, request, context):
                nonlocal calls
                calls += 1
                return pb2.Note(text=request.text, n=calls)  # type: ignore[attr-defined]

            async def Count(self, request, context):
                for i in range(request.upto):
                    yield pb2.Note(text=f"note {i}", n=i)  # type: ignore[attr-defined]

            async def Fail(self, request, context):
                await context.abort(_code(request.code), request.text)

            async def Sum(self, requests, context):
                total, texts = 0, []
                async for note in requests:
                    total += note.n
                    texts.append(note.text)
                return pb2.Note(text=" ".join(texts), n=total)  # type: ignore[attr-defined]

            async def Chat(self, requests, context):
                async for note in requests:
                    yield pb2.Note(text=note.text.upper(), n=note.n)  # type: ignore[attr-defined]

            async def Slow(self, request, context):
                await asyncio.sleep(request.ms / 1000)
                return pb2.Note(text="slow")  # type: ignore[attr-defined]

        server = grpc.aio.server()
        pb2_grpc.add_EchoServicer_to_server(Echo(), server)  # type: ignore[attr-defined]
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        print("ready", flush=True)
        await server.wait_for_termination()


def _code(number: int) -> grpc.StatusCode:
    return next(code for code in grpc.StatusCode if code.value[0] == number)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--proto", type=Path, default=PROTO)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.proto))
