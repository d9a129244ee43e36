"""Run every benchmark scenario and print a table plus JSON lines (``python -m bench``).

Core 0: the gateway alone (hypercorn, one trio worker). Core 1: the fake upstream and this
process (the load generator). For each path: added TTFT at c=1 against direct, chunks/s and
responses/s at c=32 and c=256 in both upstream write modes, gateway CPU per response, and RSS
with 256 and 1,000 streams held open. The ``hypercorn`` rows are hypercorn's floor, measured the
same way: ``bench.relay:app`` served as the gateway is, relaying the fake upstream's stream as it
is, one row per client dialect of the paths run (``--hypercorn``); the ``above hypercorn`` table
is each gateway path minus its dialect's floor. ``--litellm`` runs LiteLLM's proxy through the
same paths.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import loadgen
from bench.procs import (REPO, FakeUpstream, Gateway, Proc, add_gateway_args, commit, core_times, free_port,
                         gateway, provenance_record, relay, set_fifo, steal_ms)
from bench.scenarios import FIRST, LITELLM_PATHS, PATHS, REAL_CAPTURE, body

GATEWAY_CORE, LOAD_CORE = 0, 1
HOST = "127.0.0.1"
DIALECT = {"chat": "chat", "messages": "messages", "messages_pass": "messages", "responses": "responses",
           "responses_pass": "responses"}  # a path's client dialect: the hypercorn row that is its floor


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q * (len(values) - 1))))]


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.records: list[dict[str, Any]] = []
        self.upstream_port = free_port()
        self.upstream = FakeUpstream(core=LOAD_CORE, port=self.upstream_port, log=workdir / "upstream.log",
                                     deltas=args.deltas, hold_s=args.hold_s)
        self.direct_ttft: dict[str, float] = {}

    def emit(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        print(json.dumps(record), flush=True)

    # ------------------------------------------------------------------ scenarios

    async def ttft(self, target: str, port: int, path: str, server: Proc | None = None) -> None:
        spec = PATHS[path]
        data = loadgen.http_request(HOST, port, spec.url, body(path, "fake-chunk"), spec.headers)
        gap_s = self.args.ttft_gap_ms / 1e3
        steal0 = steal_ms(GATEWAY_CORE), steal_ms(LOAD_CORE)
        # --rt: the measured processes at SCHED_FIFO 1 and the load generator above them (as bench.sized).
        measured = [p for p in (server, self.upstream) if p is not None] if self.args.rt else []
        t0 = time.perf_counter()
        try:
            servers = [set_fifo(p.pid, 1) for p in measured]
            with loadgen.realtime(2 if measured else 1) as sched:
                samples = await loadgen.ttft(HOST, port, data, FIRST, n=self.args.ttft_n,
                                             warmup=self.args.ttft_warmup, gap_s=gap_s)
        finally:
            for p in measured:
                set_fifo(p.pid, None)
        wall_ms = (time.perf_counter() - t0) * 1e3
        steal = [round((steal_ms(c) - s0) / wall_ms, 3) for c, s0 in zip((GATEWAY_CORE, LOAD_CORE), steal0)]
        p50, p99 = pct(samples, 0.5) * 1e3, pct(samples, 0.99) * 1e3
        record: dict[str, Any] = {"target": target, "path": path, "scenario": "ttft", "c": 1, "mode": "chunk",
                                  "n": len(samples), "p50_ms": round(p50, 3), "p99_ms": round(p99, 3),
                                  "gap_ms": self.args.ttft_gap_ms, "loadgen_sched": sched,
                                  **({"servers_sched": servers} if measured else {}),
                                  "steal_share": steal}
        if target == "direct":
            self.direct_ttft = {"p50": p50, "p99": p99}
        elif self.direct_ttft:
            record["added_p50_ms"] = round(p50 - self.direct_ttft["p50"], 3)
            record["added_p99_ms"] = round(p99 - self.direct_ttft["p99"], 3)
        self.emit(record)

    async def throughput(self, target: str, port: int, path: str, server: Proc | None, mode: str, c: int,
                         size: str = "small") -> None:
        spec = PATHS[path]
        data = loadgen.http_request(HOST, port, spec.url, body(path, f"fake-{mode}", size), spec.headers)
        marks: dict[str, Any] = {}
        loop = asyncio.get_running_loop()

        def mark(name: str) -> None:
            own = os.times()
            marks[name] = (time.perf_counter(), server.cpu() if server else 0.0, core_times(GATEWAY_CORE),
                           core_times(LOAD_CORE), self.upstream.cpu(), own.user + own.system)

        warm, secs = self.args.warmup_s, self.args.seconds
        loop.call_later(warm, mark, "start")
        loop.call_later(warm + secs, mark, "stop")
        result = await loadgen.load(HOST, port, data, concurrency=c, seconds=secs, warmup_s=warm,
                                    terminal=spec.terminal, delta=spec.delta)
        (t0, cpu0, g0, l0, u0, o0), (t1, cpu1, g1, l1, u1, o1) = marks["start"], marks["stop"]
        wall = t1 - t0
        responses = result.ok / secs
        record: dict[str, Any] = {
            "target": target, "path": path, "scenario": "throughput", "mode": mode, "c": c, "body": size,
            "responses_s": round(responses, 1), "chunks_s": round(result.deltas / secs),
            "errors": result.errors,
            "gateway_core_busy": round((g1[0] - g0[0]) / max(1, g1[1] - g0[1]), 3),
            "load_core_busy": round((l1[0] - l0[0]) / max(1, l1[1] - l0[1]), 3),
            "upstream_cpu_share": round((u1 - u0) / wall, 3), "loadgen_cpu_share": round((o1 - o0) / wall, 3),
        }
        if server is not None and result.deltas:
            # Per response = per `deltas` relayed deltas (a slow server finishes few responses in the window).
            record["cpu_ms_per_response"] = round((cpu1 - cpu0) * 1e3 * self.args.deltas / result.deltas, 3)
            record["cpu_us_per_chunk"] = round((cpu1 - cpu0) * 1e6 / result.deltas, 2)
            record["process_cpu_share"] = round((cpu1 - cpu0) / wall, 3)
        if result.error_examples:
            record["error_examples"] = result.error_examples
        self.emit(record)

    async def hold(self, target: str, port: int, path: str, server: Proc, idle_kb: int) -> None:
        spec = PATHS[path]
        data = loadgen.http_request(HOST, port, spec.url, body(path, "fake-hold"), spec.headers)
        previous: tuple[int, int] | None = None
        for n in self.args.hold:
            held = loadgen.Held()
            try:
                try:
                    seconds = await held.open(HOST, port, data, FIRST, n)
                except loadgen.HoldTimeout as exc:
                    self.emit({"target": target, "path": path, "scenario": "hold", "streams": n, "error": str(exc),
                               "rss_mb": round(server.rss_kb() / 1024, 1)})
                    return
                await asyncio.sleep(0.5)
                rss = server.rss_kb()
                record: dict[str, Any] = {
                    "target": target, "path": path, "scenario": "hold", "streams": n,
                    "open_s": round(seconds, 2), "rss_mb": round(rss / 1024, 1), "idle_rss_mb": round(idle_kb / 1024, 1),
                    "kb_per_stream": round((rss - idle_kb) / n, 1),
                }
                if previous is not None:
                    record["kb_per_added_stream"] = round((rss - previous[1]) / (n - previous[0]), 1)
                previous = (n, rss)
                self.emit(record)
            finally:
                held.close()
                await asyncio.sleep(1.0)

    async def run_target(self, target: str, port: int, paths: list[str], server: Proc | None) -> None:
        args = self.args
        for path in paths:
            await self.ttft(target, port, path, server)
        if server is not None and "hold" in args.scenarios:
            idle = server.rss_kb()
            for path in paths:
                await self.hold(target, port, path, server, idle)
        if "load" in args.scenarios:
            for path in paths:
                for mode in args.modes:
                    for c in args.concurrency:
                        await self.throughput(target, port, path, server, mode, c)
        if "real" in args.scenarios and target != "direct":
            for path in paths:
                if path in REAL_CAPTURE:
                    await self.throughput(target, port, path, server, "whole", 32, size="real")

    # ------------------------------------------------------------------ targets

    def gateway(self) -> Gateway:
        return gateway(self.args, core=GATEWAY_CORE, log=self.workdir / "gateway.log", upstream_port=self.upstream_port)

    async def main(self) -> None:
        self.upstream.start()
        try:
            await self.run_target("direct", self.upstream_port, ["direct"], None)
            for dialect in self.args.hypercorn:
                floor = relay(self.args, core=GATEWAY_CORE, log=self.workdir / "relay.log",
                              upstream_port=self.upstream_port)
                floor.start()
                try:
                    await self.run_target("hypercorn", floor.port, [dialect], floor)
                finally:
                    floor.stop()
            for path in self.args.paths:
                gw = self.gateway()
                gw.start()
                try:
                    if (served := provenance_record(gw, path=path)) is not None:
                        self.emit(served)
                    await self.run_target("gateway", gw.port, [path], gw)
                finally:
                    gw.stop()
            if self.args.litellm:
                from bench.litellm import start_litellm

                for path in [p for p in self.args.paths if p in LITELLM_PATHS]:
                    proxy = start_litellm(self.workdir, core=GATEWAY_CORE, upstream_port=self.upstream_port)
                    try:
                        await self.run_target("litellm", proxy.port, [path], proxy)
                    finally:
                        proxy.stop()
        finally:
            self.upstream.stop()


# ---------------------------------------------------------------------- reporting


def machine(src: Path = REPO) -> dict[str, Any]:
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import hypercorn  # noqa: F401  (version below)
    from importlib.metadata import version

    return {"scenario": "machine", "gateway_src": str(src), "cpu": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "kernel": platform.release(), "hypercorn": version("hypercorn"), "trio": version("trio"),
            "httpx": version("httpx"), "msgspec": version("msgspec"), "commit": commit(src)}


def table(records: list[dict[str, Any]], deltas: int, *, markdown: bool = False) -> str:
    rows: dict[tuple[str, str], dict[str, str]] = {}
    order: list[tuple[str, str]] = []
    for r in records:
        if "target" not in r:
            continue
        key = (r["target"], r["path"])
        if key not in rows:
            rows[key] = {}
            order.append(key)
        row = rows[key]
        if r["scenario"] == "ttft":
            added = f" (+{r['added_p50_ms']:.2f}/+{r['added_p99_ms']:.2f})" if "added_p50_ms" in r else ""
            row["TTFT p50/p99 ms (added)"] = f"{r['p50_ms']:.2f}/{r['p99_ms']:.2f}{added}"
        elif r["scenario"] == "throughput" and r["body"] == "small":
            err = f" [{r['errors']} err]" if r["errors"] else ""
            row[f"{r['mode']} c{r['c']} chunks/s"] = f"{r['chunks_s']:,}{err}"
            if "cpu_ms_per_response" in r and r["mode"] == "whole" and r["c"] == 32:
                row["CPU ms/resp"] = f"{r['cpu_ms_per_response']:.2f}"
        elif r["scenario"] == "throughput":
            row[f"{r['body']} body CPU ms/resp"] = f"{r.get('cpu_ms_per_response', 0):.2f} ({r['chunks_s']:,}/s)"
        elif r["scenario"] == "hold" and "error" in r:
            row[f"RSS MB @{r['streams']}"] = f"{r['rss_mb']:.1f}, {r['error'].split(' had')[0]} open"
        elif r["scenario"] == "hold":
            row[f"RSS MB @{r['streams']}"] = f"{r['rss_mb']:.1f}"
            if "kb_per_added_stream" in r:
                row["KB/added stream"] = f"{r['kb_per_added_stream']:.1f}"
    columns: list[str] = []
    for key in order:
        for col in rows[key]:
            if col not in columns:
                columns.append(col)
    header = ["target", "path", *columns]
    lines = [[k[0], k[1], *(rows[k].get(c, "") for c in columns)] for k in order]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    if markdown:
        fmt = lambda cells: "| " + " | ".join(cells) + " |"  # noqa: E731
        out = [fmt(header), "|" + "|".join(" --- " for _ in header) + "|", *(fmt(line) for line in lines)]
    else:
        fmt = lambda cells: " | ".join(c.ljust(w) for c, w in zip(cells, widths))  # noqa: E731
        out = [fmt(header), "-+-".join("-" * w for w in widths), *(fmt(line) for line in lines)]
    out.append(f"(chunks = content deltas relayed, {deltas} per response; TTFT added = gateway minus direct)")
    above = above_hypercorn(records)
    if len(above) > 1:
        out += ["", _cells(above, markdown),
                "(gateway minus hypercorn relaying the same dialect's stream; deltas/s as a share of hypercorn's)"]
    return "\n".join(out)


def above_hypercorn(records: list[dict[str, Any]]) -> list[list[str]]:
    """Each gateway path against the hypercorn row of its client dialect (``bench.relay``): TTFT
    and CPU per response above it, relayed deltas/s as a share of it, RSS above it; header first."""
    by: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in records:
        if r.get("target") in ("gateway", "hypercorn") and r.get("scenario") in ("ttft", "throughput", "hold"):
            cell = (f"{r['mode']} c{r['c']}" if r["scenario"] == "throughput" and r["body"] == "small"
                    else f"{r['body']} body" if r["scenario"] == "throughput" else
                    f"@{r['streams']}" if r["scenario"] == "hold" else "ttft")
            by[(r["target"], r["path"], cell)] = r
    cells = list(dict.fromkeys(c for _, _, c in by))
    head = ["path", "floor"]
    rows: list[list[str]] = []
    for path in dict.fromkeys(p for t, p, _ in by if t == "gateway"):
        floor = DIALECT.get(path, path)
        row: dict[str, str] = {}
        for cell in cells:
            g, h = by.get(("gateway", path, cell)), by.get(("hypercorn", floor, cell))
            if g is None or h is None:
                continue
            if cell == "ttft":
                row["TTFT p50/p99 ms above"] = f"{g['p50_ms'] - h['p50_ms']:+.2f}/{g['p99_ms'] - h['p99_ms']:+.2f}"
            elif cell.startswith("@"):
                if "error" not in g and "error" not in h:
                    row[f"RSS MB {cell} above"] = f"{g['rss_mb'] - h['rss_mb']:+.1f}"
            else:
                if h["chunks_s"]:
                    row[f"{cell} deltas/s % of"] = f"{100 * g['chunks_s'] / h['chunks_s']:.0f}%"
                if "cpu_ms_per_response" in g and "cpu_ms_per_response" in h and cell in ("whole c32", "real body"):
                    row[f"{cell} CPU ms/resp above"] = f"{g['cpu_ms_per_response'] - h['cpu_ms_per_response']:+.2f}"
        if row:
            for col in row:
                if col not in head:
                    head.append(col)
            rows.append([path, f"hypercorn {floor}", *(row.get(c, "") for c in head[2:])])
    return [head, *[r + [""] * (len(head) - len(r)) for r in rows]]


def _cells(rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        return "\n".join(["| " + " | ".join(rows[0]) + " |", "|" + "|".join(" --- " for _ in rows[0]) + "|",
                          *("| " + " | ".join(r) + " |" for r in rows[1:])])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    fmt = lambda cells: " | ".join(c.ljust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([fmt(rows[0]), "-+-".join("-" * w for w in widths), *(fmt(r) for r in rows[1:])])


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    paths = ["chat", "messages", "responses", "messages_pass", "responses_pass"]
    p.add_argument("--paths", nargs="+", default=paths, choices=paths)
    p.add_argument("--modes", nargs="+", default=["whole", "chunk"], choices=["whole", "chunk"])
    p.add_argument("--concurrency", nargs="+", type=int, default=[32, 256])
    p.add_argument("--scenarios", nargs="*", default=["load", "hold", "real"], choices=["load", "hold", "real"],
                   help="TTFT always runs; these are the others")
    p.add_argument("--hold", nargs="+", type=int, default=[256, 1000], help="held stream counts for RSS")
    p.add_argument("--seconds", type=float, default=4.0, help="measured window per load run")
    p.add_argument("--warmup-s", type=float, default=1.0)
    p.add_argument("--ttft-n", type=int, default=300)
    p.add_argument("--ttft-warmup", type=int, default=30)
    p.add_argument("--ttft-gap-ms", type=float, default=2.0,
                   help="pause between TTFT requests (an agent's turns are apart; 0: back to back)")
    p.add_argument("--rt", action="store_true", help="TTFT with the gateway and the fake upstream at SCHED_FIFO 1 "
                   "and the load generator at 2 (as bench.sized; root only): other work on the machine waits")
    p.add_argument("--deltas", type=int, default=200, help="content deltas per response")
    p.add_argument("--hold-s", type=float, default=120.0)
    add_gateway_args(p)
    p.add_argument("--hypercorn", nargs="*", choices=["chat", "messages", "responses"], metavar="DIALECT",
                   help="hypercorn's floor rows (bench.relay: the fake upstream's stream relayed as it is) for these "
                        "client dialects (default: those of --paths; --hypercorn alone: none)")
    p.add_argument("--litellm", action="store_true", help="also run LiteLLM's proxy (installs it into $BENCH_PEERS/.venv-litellm, default /tmp/perf/peers)")
    p.add_argument("--quick", action="store_true", help="short windows, fewer samples (a smoke run)")
    p.add_argument("--json", metavar="FILE", help="also write the JSON lines to FILE")
    args = p.parse_args(argv)
    if args.quick:
        args.seconds, args.warmup_s, args.ttft_n, args.ttft_warmup = 1.5, 0.5, 60, 10
    if args.hypercorn is None:
        args.hypercorn = list(dict.fromkeys(DIALECT[p] for p in args.paths))
    return args


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 65536) if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def drive(args: argparse.Namespace, make: Callable[[argparse.Namespace, Path], Any],
          render: Callable[[list[dict[str, Any]]], str], prefix: str = "bench-") -> int:
    """Run ``make(args, workdir).main()`` from core 1, print its JSON lines and ``render``'s table,
    write ``--json``; on failure, the tails of the processes' logs."""
    raise_fd_limit()
    os.sched_setaffinity(0, {LOAD_CORE})  # the load generator shares core 1 with the fake upstream
    info = machine(Path(args.gateway_src).resolve())
    print(json.dumps(info), flush=True)
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        bench = make(args, Path(tmp))
        try:
            asyncio.run(bench.main())
        except BaseException:
            for log in sorted(Path(tmp).glob("*.log")):
                sys.stderr.write(f"--- {log.name} (tail)\n{log.read_text(errors='replace')[-2000:]}\n")
            raise
    print()
    print(render(bench.records))
    if args.json:
        with open(args.json, "w") as f:
            for r in [info, *bench.records]:
                f.write(json.dumps(r) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    return drive(args, Bench, lambda records: table(records, args.deltas))


__all__ = ["drive", "machine", "main", "pct"]
