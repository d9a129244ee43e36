"""Where the gateway's time to first token goes: a timeline of one request at c=1, medians over many.

``python -m bench.ttft_trace [--path messages] [-n 300] [--gap-ms 2] [--fine]`` starts the fake
upstream (core 1), the gateway in a child process (core 0, ``hypercorn.trio.serve``, the bench
pipelines) with timing marks wrapped around its socket calls and request-path steps (``--fine``:
every step), and sends ``-n`` sequential requests on one keep-alive connection from this process
(core 1, real-time priority as in ``python -m bench``). It prints the garbage collector's pauses
and, for each mark, the median µs since the request's bytes were read from the client socket (the
load generator's send and first-delta times are on the same clock). The wrappers cost ~1 µs each;
the timeline is for finding where time goes, the TTFT numbers themselves come from ``python -m bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import loadgen
from bench.procs import REPO, FakeUpstream, free_port, wait_port
from bench.scenarios import FIRST, PATHS, body

MARKS: list[tuple[str, int]] = []


def _mark(name: str) -> None:
    MARKS.append((name, time.perf_counter_ns()))


def _wrap_async(owner: Any, attr: str, name: str, *, exit_mark: bool = True) -> None:
    original = getattr(owner, attr)

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        _mark(name)
        try:
            return await original(*args, **kwargs)
        finally:
            if exit_mark:
                _mark(name + ".done")

    setattr(owner, attr, wrapper)


def _wrap_sync(owner: Any, attr: str, name: str) -> None:
    original = getattr(owner, attr)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _mark(name)
        out = original(*args, **kwargs)
        _mark(name + ".done")
        return out

    setattr(owner, attr, wrapper)


def _patch(gateway_port: int, fine: bool) -> None:
    import trio

    import importlib

    from pipeline import log as log_mod
    from pipeline import respond, retry
    from pipeline.protocols.chat.upstream_decode import ChatStreamDecoder
    from upstreams.transport import StreamTransport

    app_mod = importlib.import_module("pipeline.app")

    sides: dict[int, str] = {}

    def side(stream: Any) -> str:
        key = id(stream)
        found = sides.get(key)
        if found is None:
            found = sides[key] = "client" if stream.socket.getsockname()[1] == gateway_port else "upstream"
        return found

    recv, send_all = trio.SocketStream.receive_some, trio.SocketStream.send_all

    async def receive_some(self: Any, max_bytes: int | None = None) -> bytes:
        data = await recv(self, max_bytes)
        _mark(f"{side(self)}.recv")
        return data

    async def send_all_(self: Any, data: bytes) -> None:
        who = side(self)
        _mark(f"{who}.send")
        await send_all(self, data)
        _mark(f"{who}.send.done")

    trio.SocketStream.receive_some = receive_some  # type: ignore[method-assign]
    trio.SocketStream.send_all = send_all_  # type: ignore[method-assign]
    _wrap_async(app_mod.Gateway, "_http", "app", exit_mark=False)
    _wrap_async(app_mod, "run_pipeline", "run_pipeline", exit_mark=False)
    _wrap_async(retry.Plan, "run", "run_upstream", exit_mark=False)
    _wrap_async(StreamTransport, "handle_async_request", "upstream.request")
    _wrap_async(respond.Responder, "start", "responder.start")
    _wrap_async(respond.Responder, "body", "responder.body")
    _wrap_sync(ChatStreamDecoder, "feed_many", "decoder.feed_many")
    _wrap_sync(log_mod, "request_finished", "log.request_finished")
    if fine:
        from pipeline.protocols.base import ClientCodec
        from pipeline.stage import RequestContext
        from stages.thinking_filter import ThinkingFilter
        from stages.token_budget import TokenBudget
        from stages.tool_ids import ToolIdMap
        from pipeline.attempt import Attempt
        from upstreams import openai_chat, sse_upstream
        from upstreams.transport import LeanClient

        from pipeline.json_depth import DepthMemo

        _wrap_async(app_mod, "read_body", "read_body")  # pipeline.intake's, as app calls it
        _wrap_sync(DepthMemo, "exceeds", "json_depth")
        _wrap_sync(ClientCodec, "decode_request", "decode_request")
        _wrap_sync(RequestContext, "__init__", "RequestContext")
        for cls in (ThinkingFilter, TokenBudget, ToolIdMap):
            _wrap_async(cls, "on_request", f"{cls.__name__}.on_request")
        _wrap_sync(openai_chat.OpenAIChatUpstream, "encode", "encode_request")
        _wrap_sync(LeanClient, "_head", "LeanClient._head")
        _wrap_async(StreamTransport, "_acquire", "transport.acquire")
        _wrap_async(Attempt, "emit", "attempt.emit")
        _wrap_async(sse_upstream.SseUpstream, "_relay", "relay", exit_mark=False)
        _wrap_async(sse_upstream.SseUpstream, "stream", "upstream.stream", exit_mark=False)


def serve(port: int, out: Path, fine: bool) -> None:
    """The child: the gateway with marks, until SIGTERM; then the marks go to ``out``."""
    os.sched_setaffinity(0, {0})
    import hypercorn.config
    import hypercorn.trio
    import trio

    _patch(port, fine)
    import gc
    import importlib

    def gc_mark(phase: str, info: dict[str, int]) -> None:
        _mark(f"gc{info['generation']}.{phase}")

    gc.callbacks.append(gc_mark)

    app_mod = importlib.import_module("pipeline.app")

    config = hypercorn.config.Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.keep_alive_timeout = 75

    async def main() -> None:
        with trio.open_signal_receiver(signal.SIGTERM) as signals:
            async def trigger() -> None:
                async for _ in signals:
                    return
            await hypercorn.trio.serve(app_mod.app, config, shutdown_trigger=trigger)

    try:
        trio.run(main)
    finally:
        out.write_text(json.dumps(MARKS))


async def _requests(port: int, data: bytes, n: int, gap_s: float) -> list[tuple[int, int]]:
    """``n`` sequential requests on one connection: (sent, first delta seen) in perf_counter ns."""
    conn = loadgen.Connection("127.0.0.1", port)
    out: list[tuple[int, int]] = []
    try:
        for i in range(n):
            if gap_s and i:
                await asyncio.sleep(gap_s)
            reply = await conn.request(data, FIRST)
            if reply.status != 200 or reply.first is None:
                raise RuntimeError(f"request failed: status {reply.status}")
            out.append((int(reply.started * 1e9), int(reply.first * 1e9)))
    finally:
        conn.close()
    return out


def split(marks: list[tuple[str, int]], client: list[tuple[int, int]], warmup: int) -> list[list[tuple[str, int]]]:
    """The marks of each request (from the last ``client.recv`` before each ``app`` mark to the
    next such recv), with the load generator's send and first-delta times added."""
    starts: list[int] = []
    last_recv = None
    for i, (name, _) in enumerate(marks):
        if name == "client.recv":
            last_recv = i
        elif name == "app" and last_recv is not None:
            starts.append(last_recv)
    bounds = starts[1:] + [len(marks)]
    requests = [marks[a:b] for a, b in zip(starts, bounds)]
    for req, (sent, first) in zip(requests, client):  # the load generator's clock is the same one
        req.extend([("loadgen.sent", sent), ("loadgen.first_delta", first)])
    return requests[warmup:]


def slowest(requests: list[list[tuple[str, int]]], k: int, min_step_us: float = 250.0) -> list[str]:
    """The ``k`` requests with the longest time to first delta: their steps over ``min_step_us``."""
    def ttft(req: list[tuple[str, int]]) -> int:
        times = dict(req)
        return times.get("loadgen.first_delta", 0) - times.get("loadgen.sent", 0)

    out: list[str] = []
    for req in sorted(requests, key=ttft, reverse=True)[:k]:
        ordered = sorted(req, key=lambda m: m[1])
        steps = [f"{name} +{(t - prev) / 1e3:.0f}" for (name, t), (_, prev) in zip(ordered[1:], ordered)
                 if (t - prev) / 1e3 >= min_step_us]
        out.append(f"TTFT {ttft(req) / 1e6:.2f} ms: " + ", ".join(steps) + " (µs)")
    return out


def timeline(requests: list[list[tuple[str, int]]]) -> list[tuple[str, float, float]]:
    """Each mark's first occurrence in µs since the request's bytes were read; medians."""
    seen: dict[str, list[float]] = {}
    order: dict[str, float] = {}
    for req in requests:
        t0 = req[0][1]
        firsts: dict[str, float] = {}
        for name, t in req:
            key = name
            k = 2
            while key in firsts and name.endswith(("send", "send.done", "recv", "body", "body.done")):
                key = f"{name}#{k}"
                k += 1
            if key not in firsts:
                firsts[key] = (t - t0) / 1e3
        for key, us in firsts.items():
            seen.setdefault(key, []).append(us)
    for key, values in seen.items():
        order[key] = statistics.median(values)
    rows, prev = [], 0.0
    for key, med in sorted(order.items(), key=lambda kv: kv[1]):
        if len(seen[key]) >= len(requests) // 2:
            rows.append((key, med, med - prev))
            prev = med
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ttft_trace", description=__doc__.split("\n")[0])
    parser.add_argument("--path", default="messages", choices=[p for p in PATHS if p != "direct"])
    parser.add_argument("-n", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--gap-ms", type=float, default=2.0, help="pause between requests (0: back to back)")
    parser.add_argument("--fine", action="store_true", help="also mark the request path's steps")
    parser.add_argument("--slowest", type=int, default=0, metavar="K", help="show the K slowest requests' long steps")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.out, args.fine)
        return 0
    os.sched_setaffinity(0, {1})
    with tempfile.TemporaryDirectory(prefix="ttft-trace-") as tmp:
        work = Path(tmp)
        up_port, gw_port = free_port(), free_port()
        upstream = FakeUpstream(core=1, port=up_port, log=work / "upstream.log", deltas=200, hold_s=60)
        upstream.start()
        env = {**os.environ, "PIPELINES_CONFIG": str(REPO / "bench" / "pipelines.yaml"),
               "BENCH_UPSTREAM_PORT": str(up_port), "GATEWAY_THINKING_SECRET": "bench-secret",
               "BENCH_UPSTREAM_KEY": "bench-key"}
        out = work / "marks.json"
        with open(work / "gateway.log", "wb") as log:
            child = subprocess.Popen([sys.executable, "-m", "bench.ttft_trace", "--serve", str(gw_port),
                                      "--out", str(out), *(["--fine"] if args.fine else [])],
                                     cwd=REPO, env=env, stdout=log, stderr=log)
        try:
            wait_port(gw_port, child, 30, "traced gateway", work / "gateway.log")
            spec = PATHS[args.path]
            data = loadgen.http_request("127.0.0.1", gw_port, spec.url, body(args.path, "fake-chunk"), spec.headers)
            with loadgen.realtime():
                client = asyncio.run(_requests(gw_port, data, args.warmup + args.n, args.gap_ms / 1e3))
        finally:
            child.send_signal(signal.SIGTERM)
            child.wait(30)
            upstream.stop()
        marks = [tuple(m) for m in json.loads(out.read_text())]
    samples = [(first - sent) / 1e6 for sent, first in client[args.warmup:]]
    print(f"{args.path}: client-side TTFT p50 {statistics.median(samples):.3f} ms over {len(samples)} requests")
    pauses: dict[str, list[float]] = {}
    begun: dict[str, int] = {}
    for name, t in marks:
        if name.startswith("gc"):
            gen, _, phase = name.partition(".")
            if phase == "start":
                begun[gen] = t
            elif gen in begun:
                pauses.setdefault(gen, []).append((t - begun.pop(gen)) / 1e3)
    for gen, values in sorted(pauses.items()):
        print(f"{gen}: {len(values)} collections, median {statistics.median(values):.0f} µs, max {max(values):.0f} µs")
    print(f"{'mark':34} {'µs since request read':>22} {'step µs':>9}")
    requests = split(marks, client, args.warmup)  # type: ignore[arg-type]
    for key, med, step in timeline(requests):
        print(f"{key:34} {med:22.1f} {step:9.1f}")
    if args.slowest:
        print(f"slowest {args.slowest} (steps of 250 µs or more):")
        for line in slowest(requests, args.slowest):
            print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
