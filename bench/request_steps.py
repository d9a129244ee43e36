"""Where a real-size request's CPU goes inside the gateway: each request-path step timed alone.

``python -m bench.request_steps [--sizes 100000 1000000 4000000]`` builds the bench pipelines
(``bench/pipelines.yaml``) in this process, takes the grown Claude Code / Codex bodies of
``bench.history`` and times, per step, the median of repeated runs on the same input: the JSON
depth check (and ``depth_check_next_turn``: the check of a session's next request, one tool turn
longer, with this one remembered, as the gateway's ``DepthMemo`` does), the client codec's
decode, each request stage's ``on_request`` (``thinking_filter`` opening the envelopes,
``token_budget``'s estimate, ``tool_ids``; and ``stage_*_next_turn``: each on a session's next
request, the one before remembered by the conversation memory, ``pipeline.conversation``), the
Chat re-encode for the upstream (and ``encode_upstream_next_turn`` / ``estimate_next_turn``: a
session's next request re-encoded and estimated with this one remembered, beside the same without
memory, ``_cold``; ``decode_request_next_turn``: its decode with this one remembered), and, as
the yardstick, ``msgspec.json.decode`` of the same body. No sockets, no hypercorn: what ``python -m bench.sized`` measures on the wire minus these steps is the server
and transport side (body read, upstream write, response relay, log line).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import trio

from bench.history import THINKING_SECRET, grow, session
from bench.procs import REPO

STEPS = ("msgspec_decode", "depth_check", "decode_request", "stages", "encode_upstream")


def _median_ms(fn: Callable[[], Any], reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        t0 = time.thread_time()
        fn()
        times.append(time.thread_time() - t0)
    return statistics.median(times) * 1e3


def measure(path: str, target: int, reps: int) -> dict[str, Any]:
    os.environ.setdefault("BENCH_UPSTREAM_PORT", "9")
    os.environ.setdefault("BENCH_UPSTREAM_KEY", "bench-key")
    os.environ["GATEWAY_THINKING_SECRET"] = THINKING_SECRET
    from pipeline.conversation import Conversations
    from pipeline.json_depth import DepthMemo, json_depth_exceeds
    from pipeline.attempt import Attempt
    from pipeline.config import load_config
    from pipeline.protocols.chat import encode_request
    from pipeline.registry import build_pipelines
    from pipeline.stage import RequestContext

    config = load_config(REPO / "bench" / "pipelines.yaml")
    pipelines, _ = build_pipelines(config)
    pipe = pipelines["claude_code" if path == "messages" else "codex"]
    upstream = pipe.upstreams[0]
    body = grow(path, target, "fake-whole").data
    out: dict[str, Any] = {"scenario": "request_steps", "path": path, "target_bytes": target, "body_bytes": len(body)}
    out["msgspec_decode_ms"] = _median_ms(lambda: msgspec.json.decode(body), reps)
    out["depth_check_ms"] = _median_ms(lambda: json_depth_exceeds(body, config.server.max_json_depth), reps)
    before, after = (b.data for b in session(path, target, "fake-whole", 2))

    def next_turn() -> bool:  # the gateway's check of a session's next request, the one before remembered
        memo = DepthMemo()
        memo.exceeds(before, config.server.max_json_depth)
        t0 = time.thread_time()
        memo.exceeds(after, config.server.max_json_depth)
        memo_times.append(time.thread_time() - t0)
        return True

    memo_times: list[float] = []
    for _ in range(max(5, reps // 4)):
        next_turn()
    out["depth_check_next_turn_ms"] = statistics.median(memo_times) * 1e3
    out["decode_request_ms"] = _median_ms(lambda: pipe.codec.decode_request(body), reps)
    request, _ = pipe.codec.decode_request(body)

    def context() -> RequestContext:
        ctx = RequestContext(request_id="steps", pipeline_id=pipe.id, client=pipe.codec.name, headers={},
                             deadline=float("inf"))
        ctx.aim(Attempt.aimed(upstream, request.model))  # as the retry loop does before the request stages
        return ctx

    async def stages() -> dict[str, Any]:
        timings: dict[str, list[float]] = {s.id: [] for s in pipe.request_stages}
        shaped = request
        for i in range(reps + 1):
            shaped, ctx = request, context()
            for stage in pipe.request_stages:
                t0 = time.thread_time()
                shaped = await stage.on_request(shaped, ctx)
                if i:
                    timings[stage.id].append(time.thread_time() - t0)
        if ctx.fields.get("replay_rung") != "envelope":
            raise RuntimeError(f"{path}: replay_rung {ctx.fields.get('replay_rung')!r}, not envelope")
        return {"timings": {k: statistics.median(v) * 1e3 for k, v in timings.items()}, "request": shaped}

    async def stages_next_turn() -> dict[str, float]:
        """Each stage on a session's next request, the one before remembered (as the gateway's
        ``Conversations``), both decoded with the memory as the gateway does."""
        timings: dict[str, list[float]] = {s.id: [] for s in pipe.request_stages}
        for i in range(max(5, reps // 4) + 1):
            memory = Conversations()
            for data, timed in ((before, False), (after, bool(i))):
                recall = memory.recall("bench")
                shaped, ctx = pipe.codec.decode_request(data, recall)[0], context()
                ctx.recall = recall
                for stage in pipe.request_stages:
                    t0 = time.thread_time()
                    shaped = await stage.on_request(shaped, ctx)
                    if timed:
                        timings[stage.id].append(time.thread_time() - t0)
        return {k: statistics.median(v) * 1e3 for k, v in timings.items()}

    staged = trio.run(stages)
    for stage_id, ms in staged["timings"].items():
        out[f"stage_{stage_id}_ms"] = ms
    for stage_id, ms in trio.run(stages_next_turn).items():
        out[f"stage_{stage_id}_next_turn_ms"] = ms
    shaped = staged["request"]
    model = upstream.map_model(request.model)
    out["encode_upstream_ms"] = _median_ms(
        lambda: encode_request(shaped, model=model, profile=upstream.profile, stream=True), reps)
    out.update(_next_turn(pipe, upstream.profile, model, before, after, reps))
    out["sum_ms"] = sum(v for k, v in out.items() if k.endswith("_ms") and k != "msgspec_decode_ms"
                        and "next_turn" not in k)
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}


def _next_turn(pipe: Any, profile: Any, model: str, before: bytes, after: bytes, reps: int) -> dict[str, float]:
    """A session's next request (one tool turn longer) decoded, re-encoded for the upstream and
    estimated with the request before remembered (``pipeline.conversation``) and, in the same run,
    the re-encode and estimate without. Not shaped by the request stages: the decoder, the
    encoder and the estimate alone (``stage_*_next_turn`` times the stages)."""
    from pipeline.conversation import Conversations
    from pipeline.protocols.chat import encode_request
    from pipeline.tokens import raw_estimate

    times: dict[str, list[float]] = {"encode_upstream_next_turn_ms": [], "encode_upstream_next_turn_cold_ms": [],
                                     "estimate_next_turn_ms": [], "estimate_next_turn_cold_ms": [],
                                     "decode_request_next_turn_ms": []}
    reused = 0
    for _ in range(max(5, reps // 4)):
        memory = Conversations()
        for i, data in enumerate((before, after)):
            recall = memory.recall("bench")
            td = time.thread_time()
            request, _ = pipe.codec.decode_request(data, recall)
            if i:
                times["decode_request_next_turn_ms"].append(time.thread_time() - td)
            t0 = time.thread_time()
            encode_request(request, model=model, profile=profile, stream=True, recall=recall, slot="encode")
            t1 = time.thread_time()
            raw_estimate(request, recall, "estimate")
            t2 = time.thread_time()
            if i:
                encode_request(request, model=model, profile=profile, stream=True)
                t3 = time.thread_time()
                raw_estimate(request)
                t4 = time.thread_time()
                for name, t in zip(list(times)[:4], (t1 - t0, t3 - t2, t2 - t1, t4 - t3), strict=True):
                    times[name].append(t)
                reused = recall.kept("encode").reused
    out = {name: statistics.median(ts) * 1e3 for name, ts in times.items()}
    out["next_turn_messages_reused"] = reused
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.request_steps", description=__doc__.splitlines()[0])
    p.add_argument("--paths", nargs="+", default=["messages", "responses"], choices=["messages", "responses"])
    p.add_argument("--sizes", nargs="+", type=int, default=[100_000, 1_000_000, 4_000_000])
    p.add_argument("--core", type=int, default=0, help="pin this process to this core (-1: no pinning)")
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args(argv)
    if args.core >= 0:
        os.sched_setaffinity(0, {args.core})
    records = []
    for path in args.paths:
        for target in args.sizes:
            reps = max(5, min(100, int(20e6 / max(target, 50_000))))
            record = measure(path, target, reps)
            records.append(record)
            print(json.dumps(record), flush=True)
    if args.json:
        Path(args.json).write_text("".join(json.dumps(r) + "\n" for r in records))


if __name__ == "__main__":
    main()
