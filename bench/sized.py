"""Real-size requests: added TTFT and gateway CPU per request against the size of the history.

``python -m bench.sized`` (~3 minutes; ``--quick`` ~1) grows the captured Claude Code and Codex
requests (``bench.history``: a sealed reasoning envelope on every assistant turn, tool results of
tens of KB) to each ``--sizes`` target and, for Messages → Chat and Responses → Chat:

- sends one through the gateway and fetches what the fake upstream received (``GET /last-body``):
  every assistant tool turn must carry its reasoning byte for byte, and the gateway's
  ``request_finished`` lines must say ``replay_rung: envelope``, or the run fails;
- TTFT: that upstream body sent directly to the fake upstream (the floor: the same bytes, no
  gateway) and the client body through the gateway, alternating, c=1, 2 ms apart;
- gateway CPU per request: the worker's on-CPU time (``/proc/<pid>/task/*/schedstat``, ns) over
  sequential requests answered in one write (``fake-whole``), and the same for a one-line request;
- the yardstick: ``msgspec.json.decode`` of the same client body, on the gateway's core while the
  gateway is idle.

Core 0: the gateway alone; core 1: the fake upstream and this process (as ``python -m bench``).
The gateway and the fake upstream run at SCHED_FIFO 1 and the load generator at 2 while timing,
when allowed (root): other work on the machine then waits instead of lengthening the wall times.
``--py-spy [SIZE ...]`` also profiles the gateway at those sizes (``bench.spy``). ``--peers ccr
litellm`` then runs claude-code-router and LiteLLM's proxy in the gateway's place on the Messages
path, the same sizes and measurements (``bench.ccr``, ``bench.litellm``: each installed once into
its own prefix); their rows are ``ccr:messages`` and ``litellm:messages``. ``--session N``: at
every size, also the CPU per request over one session of N turns around that size, each request
the one before plus one tool turn (what the conversation memory sees; the other figures repeat one
body), printed again as the session curve: ``--sizes 10000 30000 100000 300000 1000000 2000000
4000000`` gives the curve from 10 KB to 4 MB. Below the capture's ~40-50 KB a body is the capture
cut down (``bench.history``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from bench import loadgen
from bench.history import Body, grow, session
from bench.procs import (FakeUpstream, Gateway, Proc, add_gateway_args, descendants, free_port, gateway,
                         provenance_record, set_fifo)
from bench.run import drive, pct
from bench.scenarios import FIRST, PATHS, body as small_body

GATEWAY_CORE, LOAD_CORE = 0, 1
HOST = "127.0.0.1"
SIZES = (0, 100_000, 1_000_000, 4_000_000)  # 0: the capture alone (~40-50 KB)
NATURAL_TURN = 40_000  # bytes a natural tool turn adds, on average (bench.history: 26-53 KB)
MIN_TURN = 1_000  # the smallest tool turn a session adds (a short reasoning, a call, a short result)
MIN_START = 5_000  # the smallest body bench.history cuts a capture down to


def session_plan(target: int, turns: int) -> tuple[int, int | None]:
    """(first body's bytes, bytes per added turn or None for the natural turns) of a session of
    ``turns`` measured requests (after two unmeasured) whose mean body is about ``target``: natural
    turns from ~800 KB up, below that turns of ``target / turns`` (at least ``MIN_TURN``), so the
    session spans about half the size either side of it; below ~20 KB the session cannot stay
    that small and its mean is larger (``session_mean_body_bytes`` says what it was)."""
    step = min(NATURAL_TURN, max(MIN_TURN, target // max(1, turns)))
    return max(MIN_START, target - (turns + 3) * step // 2), None if step == NATURAL_TURN else step


def cpu_ns(pid: int) -> int:
    """Nanoseconds on CPU of every thread of ``pid`` (schedstat: finer than stat's 10 ms ticks)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            pass
    return total


def decode_ms(data: bytes, reps: int) -> float:
    """Median CPU ms (this thread's, so a preempted run is not counted long) of
    ``msgspec.json.decode`` on ``data`` (untyped, to Python objects)."""
    decode = msgspec.json.decode
    times = []
    for _ in range(reps):
        t0 = time.thread_time()
        decode(data)
        times.append(time.thread_time() - t0)
    return statistics.median(times) * 1e3


def realtime(pid: int) -> str:
    """Every thread of ``pid`` at SCHED_FIFO 1 (unless ``--no-rt``): on a shared machine, other processes
    then wait for the measured ones instead of stretching their wall times (the kernel's RT
    throttle still leaves them 5 % of each core). The load generator times at FIFO 2, above the
    fake upstream it shares core 1 with."""
    return set_fifo(pid, 1)


class SizedBench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.upstream_port = free_port()
        self.upstream = FakeUpstream(core=LOAD_CORE, port=self.upstream_port, log=workdir / "upstream.log",
                                     deltas=args.deltas, hold_s=10.0)
        self.records: list[dict[str, Any]] = []
        self.small_cpu = 0.0  # CPU ms of a one-line request on the current gateway

    def emit(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        print(json.dumps(record), flush=True)

    def samples_for(self, size: int) -> int:
        """Fewer samples for bigger bodies: about the same time per size."""
        n = self.args.n if size < 200_000 else max(self.args.min_n, int(self.args.n * 200_000 / size))
        return n

    # ------------------------------------------------------------------ one size

    async def check(self, gw: Proc, path: str, grown: Body, tag: str, *, peer: bool = False) -> bytes:
        """One request through the gateway (or a peer: ``peer``); returns the upstream body after
        checking it (a peer's only for its status and the stream's end: peers replay no envelopes)."""
        spec = PATHS[path]
        conn = loadgen.Connection(HOST, gw.port)
        try:
            reply = await conn.request(self._request(gw.port, path, grown.data, f"{tag}-check"), keep=True)
        finally:
            conn.close()
        text = loadgen.dechunk(reply.body)
        if reply.status != 200 or spec.terminal not in text:
            raise RuntimeError(f"{tag}: status {reply.status}, terminal event missing: {text[-400:]!r}")
        conn = loadgen.Connection(HOST, self.upstream_port)
        try:
            got = await conn.request(b"GET /last-body HTTP/1.1\r\nhost: x\r\n\r\n", keep=True)
        finally:
            conn.close()
        upstream = got.body
        if peer:
            return upstream
        sent = msgspec.json.decode(upstream)
        replayed = {}
        for message in sent["messages"]:
            if message["role"] == "assistant" and message.get("tool_calls"):
                for call in message["tool_calls"]:
                    replayed[call["id"]] = message.get("reasoning_content")
        if replayed != grown.reasoning_by_call:
            bad = [k for k in grown.reasoning_by_call if replayed.get(k) != grown.reasoning_by_call[k]]
            raise RuntimeError(f"{tag}: {len(bad)} of {len(grown.reasoning_by_call)} tool turns did not replay "
                               f"their reasoning byte for byte (first: {bad[:1]}); replayed {len(replayed)} turns")
        return upstream

    def _request(self, port: int, path: str, data: bytes, request_id: str) -> bytes:
        headers = {**PATHS[path].headers, "x-request-id": request_id}
        return loadgen.http_request(HOST, port, PATHS[path].url, data, headers)

    async def ttft(self, gw: Proc, path: str, gateway_req: bytes, direct_req: bytes, n: int) -> dict[str, Any]:
        """Alternating direct / gateway requests on two keep-alive connections."""
        direct = loadgen.Connection(HOST, self.upstream_port)
        via = loadgen.Connection(HOST, gw.port)
        d_s: list[float] = []
        g_s: list[float] = []
        gap = self.args.gap_ms / 1e3
        cpu0 = 0
        try:
            with loadgen.realtime(2 if self.args.rt else 1) as sched:
                for i in range(self.args.warmup + n):
                    if i == self.args.warmup:
                        cpu0 = tree_cpu_ns(gw)
                    for conn, req, out in ((direct, direct_req, d_s), (via, gateway_req, g_s)):
                        await asyncio.sleep(gap)
                        reply = await conn.request(req, FIRST)
                        if reply.status != 200 or reply.first is None:
                            raise RuntimeError(f"{path} ttft: status {reply.status}, first delta {reply.first}")
                        if i >= self.args.warmup:
                            out.append((reply.first - reply.started) * 1e3)
            cpu = (tree_cpu_ns(gw) - cpu0) / 1e6 / n
        finally:
            direct.close()
            via.close()
        added = sorted(g - d for g, d in zip(g_s, d_s))
        return {"n": n, "loadgen_sched": sched,
                "direct_p50_ms": round(pct(d_s, 0.5), 3), "direct_p99_ms": round(pct(d_s, 0.99), 3),
                "gateway_p50_ms": round(pct(g_s, 0.5), 3), "gateway_p99_ms": round(pct(g_s, 0.99), 3),
                "added_p50_ms": round(pct(g_s, 0.5) - pct(d_s, 0.5), 3),
                "added_p99_ms": round(pct(g_s, 0.99) - pct(d_s, 0.99), 3),
                "paired_added_p50_ms": round(pct(added, 0.5), 3),
                "cpu_ms_per_request_chunk": round(cpu, 3)}

    async def cpu(self, gw: Proc, request: bytes, n: int) -> float:
        """Gateway CPU ms per request over ``n`` sequential requests (after 3 unmeasured)."""
        conn = loadgen.Connection(HOST, gw.port)
        try:
            for i in range(3 + n):
                if i == 3:
                    cpu0 = tree_cpu_ns(gw)
                reply = await conn.request(request)
                if reply.status != 200:
                    raise RuntimeError(f"cpu run: status {reply.status}")
            return (tree_cpu_ns(gw) - cpu0) / 1e6 / n
        finally:
            conn.close()

    async def session(self, gw: Proc, path: str, target: int, model: str, tag: str) -> dict[str, Any]:
        """CPU per request over one session's ``--session`` turns around ``target`` bytes, each
        request the last one plus a tool turn (``bench.history.session``; ``session_plan``: turns
        of a size that keeps the session near ``target``), after the first two unmeasured."""
        start, turn_bytes = session_plan(target, self.args.session)
        turns = session(path, start, model, self.args.session + 2, turn_bytes)
        bodies = [self._request(gw.port, path, b.data, f"{tag}-session") for b in turns]
        conn = loadgen.Connection(HOST, gw.port)
        try:
            for i, request in enumerate(bodies):
                if i == 2:
                    cpu0 = tree_cpu_ns(gw)
                reply = await conn.request(request)
                if reply.status != 200:
                    raise RuntimeError(f"session run: status {reply.status}")
            cpu = (tree_cpu_ns(gw) - cpu0) / 1e6 / self.args.session
        finally:
            conn.close()
        sizes = [len(b.data) for b in turns[2:]]
        return {"session_turns": self.args.session, "session_mean_body_bytes": round(statistics.mean(sizes)),
                "session_body_bytes": [sizes[0], sizes[-1]],
                "session_turn_bytes": round((sizes[-1] - sizes[0]) / max(1, len(sizes) - 1)),
                "cpu_ms_per_request_session": round(cpu, 3),
                "cpu_session_over_small": round(cpu - self.small_cpu, 3)}

    def yardstick(self, data: bytes) -> float:
        """msgspec decode of ``data`` on the gateway's core (the gateway is idle meanwhile)."""
        os.sched_setaffinity(0, {GATEWAY_CORE})
        try:
            decode_ms(data, 3)
            return decode_ms(data, max(5, min(200, int(40e6 / max(1, len(data))))))
        finally:
            os.sched_setaffinity(0, {LOAD_CORE})

    async def size(self, gw: Proc, path: str, target: int, peer: str = "") -> None:
        """One point of the curve; ``target`` -1 is the one-line request (the baseline); ``peer``
        names the proxy ``gw`` is when it is not the gateway (``--peers``)."""
        tag = f"sized-{path}-{'small' if target < 0 else target}"
        model = _peer_model(peer)
        grown = _body(path, target, model("fake-chunk"))
        upstream_body = await self.check(gw, path, grown, tag, peer=bool(peer))
        n = self.samples_for(len(grown.data))
        gateway_req = self._request(gw.port, path, grown.data, f"{tag}-ttft")
        direct_req = loadgen.http_request(HOST, self.upstream_port, "/v1/chat/completions", upstream_body)
        record: dict[str, Any] = {"scenario": "sized", "path": f"{peer}:{path}" if peer else path,
                                  "target_bytes": target, "body_bytes": len(grown.data),
                                  "upstream_body_bytes": len(upstream_body), "tool_turns": grown.turns}
        if peer:
            record["peer"] = peer
        record.update(await self.ttft(gw, path, gateway_req, direct_req, n))
        whole = _body(path, target, model("fake-whole"))
        cpu = await self.cpu(gw, self._request(gw.port, path, whole.data, f"{tag}-cpu"), n)
        if target < 0:
            self.small_cpu = cpu
        small_cpu = self.small_cpu
        dec = self.yardstick(grown.data)
        with open("/proc/loadavg") as f:
            load1 = float(f.read().split()[0])
        record.update({"loadavg_1m": load1,  # the machine's other work (2 cores: above ~2 it queues)
                       "cpu_ms_per_request": round(cpu, 3), "cpu_ms_over_small": round(cpu - small_cpu, 3),
                       "msgspec_decode_ms": round(dec, 3), "cpu_over_decode": round(cpu / dec, 1),
                       "size_cpu_over_decode": round((cpu - small_cpu) / dec, 1)})
        if target >= 0 and self.args.session:
            record.update(await self.session(gw, path, len(grown.data), model("fake-whole"), tag))
        self.emit(record)
        if self.args.py_spy and target in self.args.py_spy and not peer:
            await self.profile(gw, path, target, self._request(gw.port, path, whole.data, f"{tag}-spy"), cpu)

    async def profile(self, gw: Gateway, path: str, target: int, request: bytes, cpu_ms: float) -> None:
        """py-spy on the gateway while sequential requests of this size run (``bench.spy``)."""
        from bench import spy

        raw = self.workdir / f"spy-{path}-{target}.txt"
        seconds = self.args.spy_seconds
        recorder = spy.start(gw.pid, raw, seconds)
        conn = loadgen.Connection(HOST, gw.port)
        done = 0
        try:
            await asyncio.sleep(0.5)  # py-spy attaches
            stop = time.monotonic() + seconds - 1.0
            while time.monotonic() < stop:
                reply = await conn.request(request)
                if reply.status != 200:
                    raise RuntimeError(f"profile run: status {reply.status}")
                done += 1
        finally:
            conn.close()
        await asyncio.to_thread(recorder.wait)
        if self.args.spy_out:
            Path(self.args.spy_out).mkdir(parents=True, exist_ok=True)
            shutil.copy(raw, Path(self.args.spy_out) / raw.name)
        self.emit({"scenario": "sized_profile", "path": path, "target_bytes": target, **spy.summarise(raw, done, cpu_ms)})

    # ------------------------------------------------------------------ a path

    async def path(self, path: str) -> None:
        gw = gateway(self.args, core=GATEWAY_CORE, log=self.workdir / f"gateway-{path}.log",
                     upstream_port=self.upstream_port)
        gw.start()
        if (served := provenance_record(gw, path=path)) is not None:
            self.emit(served)
        if self.args.rt:
            self.emit({"scenario": "sized_sched", "path": path, "gateway": realtime(gw.pid)})
        try:
            for target in (-1, *self.args.sizes):
                await self.size(gw, path, target)
        finally:
            gw.stop()
        self.emit(rungs(gw.log, path))

    async def peer(self, name: str) -> None:
        """A peer proxy on core 0 in the gateway's place, on the Messages path (the one both
        serve from a Chat upstream), the same sizes; its CPU is its whole process tree's."""
        if name == "ccr":
            from bench.ccr import start_ccr
            proxy: Proc = start_ccr(self.workdir, core=GATEWAY_CORE, upstream_port=self.upstream_port)
        else:
            from bench.litellm import start_litellm
            proxy = start_litellm(self.workdir, core=GATEWAY_CORE, upstream_port=self.upstream_port)
        try:
            if self.args.rt:
                self.emit({"scenario": "sized_sched", "path": f"{name}:messages",
                           "gateway": ",".join(sorted({realtime(p) for p in tree_pids(proxy)}))})
            for target in (-1, *self.args.sizes):
                await self.size(proxy, "messages", target, peer=name)
        finally:
            proxy.stop()

    async def main(self) -> None:
        self.upstream.start()
        if self.args.rt:
            self.emit({"scenario": "sized_sched", "upstream": realtime(self.upstream.pid)})
        try:
            for path in self.args.paths:
                await self.path(path)
            for name in self.args.peers:
                await self.peer(name)
        finally:
            self.upstream.stop()


def tree_pids(proc: Proc) -> list[int]:
    """The processes whose CPU counts: the gateway's one worker; a peer's whole tree (node's
    threads, LiteLLM's uvicorn worker)."""
    if isinstance(proc, Gateway) or proc.proc is None:
        return [proc.pid]
    return [proc.proc.pid, *descendants(proc.proc.pid)]


def tree_cpu_ns(proc: Proc) -> int:
    return sum(cpu_ns(pid) for pid in tree_pids(proc))


def _peer_model(peer: str) -> Callable[[str], str]:
    """The request's model naming the fake upstream's ``name`` on ``peer``."""
    if peer == "ccr":
        from bench.ccr import model
        return model
    return lambda name: name


def _body(path: str, target: int, model: str) -> Body:
    if target < 0:
        return Body(path, small_body(path, model), 0, {})
    return grow(path, target, model)


def rungs(log: Path, path: str) -> dict[str, Any]:
    """The replay rungs and statuses of the gateway's request_finished lines, per size; raises
    unless every grown request was served (200) with replay_rung ``envelope``."""
    seen: dict[str, dict[str, int]] = {}
    for line in log.read_text(errors="replace").splitlines():
        if '"request_finished"' not in line or '"sized-' not in line:
            continue
        entry = json.loads(line)
        count = seen.setdefault(entry["request_id"], {})  # one id per batch: check, ttft, cpu
        label = f"{entry.get('status')}/{entry.get('replay_rung')}"
        count[label] = count.get(label, 0) + 1
    bad = {k: v for k, v in seen.items() if "-small-" not in k and set(v) != {"200/envelope"}}
    if bad or not seen:
        raise RuntimeError(f"{path}: requests not served from the envelope rung: {bad or 'no request_finished lines'}")
    return {"scenario": "sized_rungs", "path": path, "status_rung": seen}


def _render(rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(row) + " |" for row in rows]
        lines.insert(1, "|" + "|".join(" --- " for _ in rows[0]) + "|")
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(" | ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows)


def table(records: list[dict[str, Any]], *, markdown: bool = False) -> str:
    """The size curve, then (when sessions ran) the session curve."""
    head = ["path", "body KB", "tool turns", "added TTFT p50/p99 ms", "direct p50 ms", "gateway CPU ms/req",
            "over one-line", "msgspec decode ms", "CPU ÷ decode", "size part ÷ decode", "session CPU ms/req",
            "session ÷ decode"]
    rows = [head]
    for r in records:
        if r.get("scenario") != "sized" or "target_bytes" not in r:
            continue
        small = r["target_bytes"] < 0
        rows.append([r["path"], "one line" if small else f"{r['body_bytes'] / 1000:,.0f}", str(r["tool_turns"]),
                     f"{r['added_p50_ms']:.2f}/{r['added_p99_ms']:.2f}", f"{r['direct_p50_ms']:.2f}",
                     f"{r['cpu_ms_per_request']:.2f}", "" if small else f"{r['cpu_ms_over_small']:.2f}",
                     f"{r['msgspec_decode_ms']:.3f}", "" if small else f"{r['cpu_over_decode']:.1f}",
                     "" if small else f"{r['size_cpu_over_decode']:.1f}",
                     f"{r['cpu_ms_per_request_session']:.2f}" if "cpu_ms_per_request_session" in r else "",
                     f"{_session_ratio(r):.1f}" if "cpu_ms_per_request_session" in r else ""])
    out = _render(rows, markdown)
    curve = session_curve(records)
    return out if len(curve) == 1 else out + "\n\n" + _render(curve, markdown)


def session_curve(records: list[dict[str, Any]]) -> list[list[str]]:
    """Gateway CPU per request against the body's size: a repeated body beside a session's next
    request (each the one before plus one tool turn), the header row first."""
    rows = [["path", "body KB", "repeated CPU ms/req", "session mean KB", "session KB first-last", "KB/turn",
             "session CPU ms/req", "session - repeated ms", "session over one-line ms", "session ÷ decode"]]
    for r in records:
        if r.get("scenario") != "sized" or "cpu_ms_per_request_session" not in r:
            continue
        first, last = r.get("session_body_bytes", [0, 0])
        rows.append([r["path"], f"{r['body_bytes'] / 1000:,.0f}", f"{r['cpu_ms_per_request']:.2f}",
                     f"{r['session_mean_body_bytes'] / 1000:,.0f}", f"{first / 1000:,.0f}-{last / 1000:,.0f}",
                     f"{r.get('session_turn_bytes', 0) / 1000:,.1f}", f"{r['cpu_ms_per_request_session']:.2f}",
                     f"{r['cpu_ms_per_request_session'] - r['cpu_ms_per_request']:+.2f}",
                     f"{r['cpu_session_over_small']:.2f}", f"{_session_ratio(r):.1f}"])
    return rows


def _session_ratio(r: dict[str, Any]) -> float:
    """Session CPU per request ÷ msgspec's decode of a body of the session's mean size (decode
    time is linear in the body: scaled from this size's yardstick)."""
    mean = r.get("session_mean_body_bytes", r["body_bytes"])
    return float(r["cpu_ms_per_request_session"] / (r["msgspec_decode_ms"] * mean / r["body_bytes"]))


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.sized", description=__doc__.splitlines()[0])
    p.add_argument("--paths", nargs="+", default=["messages", "responses"], choices=["messages", "responses"])
    p.add_argument("--sizes", nargs="+", type=int, default=list(SIZES), help="history targets in bytes (0: the capture)")
    p.add_argument("-n", "--n", type=int, default=300, help="TTFT / CPU samples per size below 200 KB")
    p.add_argument("--min-n", type=int, default=40, help="samples per size at least")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--gap-ms", type=float, default=2.0)
    p.add_argument("--deltas", type=int, default=200)
    add_gateway_args(p)
    p.add_argument("--no-rt", dest="rt", action="store_false",
                   help="leave the gateway and the fake upstream at normal priority (by default SCHED_FIFO 1, "
                        "so that other work on the machine does not stretch their wall times)")
    p.add_argument("--py-spy", nargs="*", type=int, metavar="SIZE",
                   help="profile the gateway with py-spy at these --sizes targets (default: the largest)")
    p.add_argument("--spy-seconds", type=float, default=6.0)
    p.add_argument("--spy-out", metavar="DIR", help="keep py-spy's raw stacks there")
    p.add_argument("--peers", nargs="*", default=[], choices=["ccr", "litellm"],
                   help="also run these proxies in the gateway's place on the Messages path: claude-code-router "
                        "2.0.0 (npm), LiteLLM 1.106 (pip), each into its own prefix under $BENCH_PEERS (/tmp/perf/peers)")
    p.add_argument("--session", type=int, default=20, metavar="N",
                   help="at every size, also CPU per request over a session of N turns around it, each request "
                        "the one before plus a tool turn (0: not measured)")
    p.add_argument("--quick", action="store_true", help="fewer samples (a smoke run)")
    p.add_argument("--json", metavar="FILE", help="also write the JSON lines to FILE")
    args = p.parse_args(argv)
    if args.quick:
        args.n, args.min_n, args.warmup = 40, 10, 2
    if args.py_spy == []:
        args.py_spy = [max(args.sizes)]
    return args


def main(argv: list[str] | None = None) -> int:
    return drive(parse(argv), SizedBench, table, "bench-sized-")


if __name__ == "__main__":
    sys.exit(main())
