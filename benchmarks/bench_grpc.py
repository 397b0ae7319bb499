"""gRPC unary: redline beside a plain grpcio asyncio client loop (what ghz-like Python
load would be), against grpcio's own server, one core each.

    python benchmarks/bench_grpc.py [--seconds 10] [--repeat 3] [--concurrency 32]

The echo server (tests/http/grpcserver.py, grpc.aio) runs on core 0; the grpcio loop
(``--concurrency`` tasks calling ``Say`` back to back on one channel) and redline's closed
model (as many users, one worker) take turns on core 1, interleaved. Each is timed by the
CPU of its calling loop alone (``time.process_time`` around the grpcio loop; the worker's
CPU over its measured intervals for redline), so the figure is calls per second of client
CPU ("per core"), start-up left out of both:
issue #28's target is redline >= 2x the grpcio loop. Raw calls per second are printed too
(the server on its one core may cap both). Then redline's open model at a fixed rate (60%
of the server's closed-loop rate), which must hold the rate within 1%.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from _common import TARGET_CORE, median, pinned_script, run_pinned, table

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / "tests" / "http" / "grpcserver.py"
PROTO = ROOT / "tests" / "fixtures" / "grpc" / "echo.proto"

GRPCIO_LOOP = """
import asyncio, sys, time, tempfile, importlib
from pathlib import Path
import grpc
sys.path.insert(0, {server_dir!r})
from grpcserver import load_stubs

async def main(port, seconds, concurrency):
    with tempfile.TemporaryDirectory() as tmp:
        pb2, pb2_grpc = load_stubs(Path({proto!r}), Path(tmp))
        async with grpc.aio.insecure_channel(f"127.0.0.1:{{port}}") as channel:
            stub = pb2_grpc.EchoStub(channel)
            note = pb2.Note(text="hello")
            await stub.Say(note)
            done = 0
            stop = time.monotonic() + seconds
            async def user():
                nonlocal done
                while time.monotonic() < stop:
                    await stub.Say(note)
                    done += 1
            start, cpu = time.monotonic(), time.process_time()
            await asyncio.gather(*(user() for _ in range(concurrency)))
            print(done / (time.monotonic() - start), done / (time.process_time() - cpu))

asyncio.run(main(int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])))
"""


def grpcio_loop(port: int, seconds: int, concurrency: int) -> tuple[float, float]:
    """Calls per second, and calls per CPU second, of the plain grpcio asyncio loop."""
    code = GRPCIO_LOOP.format(server_dir=str(SERVER.parent), proto=str(PROTO))
    timed = run_pinned([sys.executable, "-c", code, str(port), str(seconds), str(concurrency)])
    rps, per_cpu = timed.stdout.strip().splitlines()[-1].split()
    return float(rps), float(per_cpu)


def redline(port: int, seconds: int, load: dict) -> tuple[dict, float]:
    with tempfile.TemporaryDirectory() as tmp:
        plan = Path(tmp) / "plan.json"
        plan.write_text(json.dumps({
            "name": "grpc", "target": f"http://127.0.0.1:{port}",
            "grpc": {"proto": str(PROTO)},
            "requests": [{"grpc": "echo.Echo/Say", "message": {"text": "hello"}}],
            "load": load, "duration": f"{seconds}s", "workers": 1,
        }))  # fmt: skip
        out = Path(tmp) / "r.json"
        run_pinned([sys.executable, "-m", "redline", "run", str(plan), "--quiet",
                    "--out", str(out)])  # fmt: skip
        data = json.loads(out.read_text())
    total = data["summary"]["total"]
    # the worker's own CPU over the measured intervals (start-up is not the loop's cost)
    cpu_s = sum(i["generator"]["cpu_percent"] / 100 * i["duration_s"] for i in data["intervals"])
    return total, total["requests"] / cpu_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with pinned_script(SERVER, "gRPC server") as port:
        rows, ratios, server_rates = [], [], []
        for round_ in range(args.repeat):
            theirs, theirs_per_cpu = grpcio_loop(port, args.seconds, args.concurrency)
            ours, ours_per_cpu = redline(port, args.seconds, {"vus": args.concurrency})
            ratios.append(ours_per_cpu / theirs_per_cpu)
            server_rates.append(max(theirs, ours["rps"]))
            rows.append([
                round_ + 1, f"{theirs:,.0f}", f"{theirs_per_cpu:,.0f}", f"{ours['rps']:,.0f}",
                f"{ours_per_cpu:,.0f}", f"{ours['latency_ms']['p50']:.2f}",
                f"{ours['latency_ms']['p99']:.2f}", ours["errors"], f"{ratios[-1]:.2f}x",
            ])  # fmt: skip
        print(f"unary Say, closed loop of {args.concurrency}, {args.seconds} s; server on core "
              f"{TARGET_CORE}, clients on the other")  # fmt: skip
        print(table(rows, ["round", "grpcio calls/s", "grpcio calls/CPU-s", "redline calls/s",
                           "redline calls/CPU-s", "p50 ms", "p99 ms", "errors",
                           "ratio per CPU"]))  # fmt: skip
        print(f"median ratio, calls per client CPU second, redline / grpcio loop: "
              f"{median(ratios):.2f}x (target >= 2x)")  # fmt: skip
        rate = round(median(server_rates) * 0.6)
        held, _ = redline(port, args.seconds, {"rate": f"{rate}/s"})
        print(f"open model at {rate:,}/s: {held['rps']:,.1f} calls/s "
              f"({held['rps'] / rate - 1:+.2%} of the rate; target within 1%), "
              f"p50 {held['latency_ms']['p50']:.2f} ms, p99 {held['latency_ms']['p99']:.2f} ms "
              f"from the intended start, errors {held['errors']}")  # fmt: skip


if __name__ == "__main__":
    main()
