"""Before/after in one sitting: two checkouts' gateways through the same bench, interleaved.

``python -m bench.ab A_DIR B_DIR [--rounds 3]`` runs, per round, ``python -m bench``'s small-request
cells (added TTFT, relayed deltas/s and CPU per response per path, write mode and concurrency, the
real 40-50 KB bodies) and then ``python -m bench.sized``'s real-size cells (Messages and Responses
at ~100 KB, 1 MB, 4 MB), each for A and for B, the two sides taking turns (round 1 A then B, round 2
B then A, ...: a drift of the machine during the sitting then does not favour one side). Prints a
markdown table: per metric each round's value, the median per side, B against A, and each side's
spread (max - min over the median), so that run-to-run noise is in view next to the difference.

Only the gateway differs between the sides: the fake upstream, the load generator and the
request bodies are this checkout's (the one running ``bench.ab``). Each side's gateway runs from
its own tree with its own ``.venv`` (``DIR/.venv`` unless ``--venv-a`` / ``--venv-b``) and its own
``bench/pipelines.yaml``; its imports are traced (``--check-src``) and every gateway process's
source tree and commit are printed, or the run stops.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import run, sized
from bench.procs import commit, steal_ms

LOAD_CORE = run.LOAD_CORE


@dataclass(frozen=True)
class Side:
    label: str  # "A" or "B"
    src: Path
    venv: Path | None
    config: Path


class _Quiet:
    """A bench whose records are kept, not printed (the sitting prints one line per run)."""

    records: list[dict[str, Any]]

    def emit(self, record: dict[str, Any]) -> None:
        self.records.append(record)


class SmallBench(_Quiet, run.Bench):
    async def run_target(self, target: str, port: int, paths: list[str], server: Any) -> None:
        if target == "direct":  # only the floor of the added TTFT: direct deltas/s do not depend on a side
            for path in paths:
                await self.ttft(target, port, path)
            return
        await super().run_target(target, port, paths, server)


class SizedBench(_Quiet, sized.SizedBench):
    pass


# ---------------------------------------------------------------------- one run


def gateway_argv(side: Side) -> list[str]:
    argv = ["--gateway-src", str(side.src), "--config", str(side.config), "--check-src"]
    return argv + (["--gateway-venv", str(side.venv)] if side.venv else [])


def small_argv(args: argparse.Namespace) -> list[str]:
    argv = ["--paths", *args.paths, "--modes", "whole", "chunk", "--concurrency", *map(str, args.concurrency),
            "--scenarios", "load", "real", *(["hold"] if args.hold else []), "--rt",
            "--seconds", str(args.seconds), "--warmup-s", str(args.warmup_s), "--ttft-n", str(args.ttft_n),
            "--hypercorn"]  # no hypercorn rows: the same code on both sides
    return argv + (["--hold", *map(str, args.hold)] if args.hold else [])


def sized_argv(args: argparse.Namespace) -> list[str]:
    return ["--paths", *[p for p in args.paths if p != "chat"], "--sizes", *map(str, args.sizes),
            "-n", str(args.sized_n), "--min-n", str(args.sized_min_n)]


def loadavg() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def one_run(phase: str, side: Side, round_no: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    """One bench (``small`` or ``sized``) against one side's gateway; its records, tagged."""
    if phase == "small":
        bench_args, make = run.parse(small_argv(args) + gateway_argv(side)), SmallBench
    else:
        bench_args, make = sized.parse(sized_argv(args) + gateway_argv(side)), SizedBench
    load0, steal0, t0 = loadavg(), steal_ms(run.GATEWAY_CORE), time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"bench-ab-{side.label}-") as tmp:
        bench = make(bench_args, Path(tmp))
        try:
            asyncio.run(bench.main())
        except BaseException:
            for log in sorted(Path(tmp).glob("*.log")):
                text = log.read_text(errors="replace")
                tail = "\n".join(line for line in text.splitlines() if not line.startswith("#"))[-2000:]
                sys.stderr.write(f"--- {side.label} {phase}: {log.name} (tail, import trace left out)\n{tail}\n")
            raise
    wall = time.monotonic() - t0
    steal = (steal_ms(run.GATEWAY_CORE) - steal0) / (wall * 1e3)
    served = sorted({(r["src"], r["commit"], r["venv"]) for r in bench.records if r.get("scenario") == "gateway"})
    if [s[0] for s in served] != [str(side.src)]:
        raise RuntimeError(f"{side.label} {phase}: gateways served {served}, expected {side.src} only")
    run_info = {"scenario": "ab_run", "side": side.label, "round": round_no, "phase": phase,
                "wall_s": round(wall, 1), "loadavg_1m_start": load0, "loadavg_1m_end": loadavg(),
                "steal_share_core0": round(steal, 4), "served": [list(s) for s in served],
                "gateways": sum(r.get("scenario") == "gateway" for r in bench.records)}
    where = ", ".join(f"{s} @ {c}" for s, c, _ in served)
    print(f"round {round_no} {side.label} {phase:5}: {wall:5.0f} s, load {load0:.2f} -> {loadavg():.2f}, "
          f"steal {steal:.1%}; {run_info['gateways']} gateway processes served {where}", flush=True)
    return [run_info, *({**r, "side": side.label, "round": round_no, "phase": phase} for r in bench.records)]


# ---------------------------------------------------------------------- metrics

# (metric, which way is better): "low" for times and CPU, "high" for throughput.
Metric = tuple[str, str]


def metrics(record: dict[str, Any]) -> list[tuple[Metric, float]]:
    """The table's numbers in one bench record."""
    s, path = record.get("scenario"), record.get("path")
    out: list[tuple[Metric, float]] = []
    if s == "ttft" and record.get("target") == "direct":
        out.append((("control: direct TTFT p50 ms (the floor)", "low"), record["p50_ms"]))
    elif s == "ttft" and "added_p50_ms" in record:
        out += [((f"{path} added TTFT p50 ms", "low"), record["added_p50_ms"]),
                ((f"{path} added TTFT p99 ms", "low"), record["added_p99_ms"])]
    elif s == "throughput" and record["body"] == "small":
        cell = f"{path} {record['mode']} c{record['c']}"
        out.append(((f"{cell} deltas/s", "high"), record["chunks_s"]))
        if "cpu_ms_per_response" in record:
            out.append(((f"{cell} CPU ms/resp", "low"), record["cpu_ms_per_response"]))
        if record["errors"]:
            out.append(((f"{cell} errors", "low"), record["errors"]))
    elif s == "throughput":
        cell = f"{path} real body whole c{record['c']}"
        out += [((f"{cell} deltas/s", "high"), record["chunks_s"]),
                ((f"{cell} CPU ms/resp", "low"), record.get("cpu_ms_per_response", 0.0))]
    elif s == "hold" and "rss_mb" in record and "error" not in record:
        out.append(((f"{path} RSS MB @{record['streams']} streams", "low"), record["rss_mb"]))
    elif s == "sized":
        target = record["target_bytes"]  # by the target, not the body's bytes: those vary with the checkout's source
        size = "one-line" if target < 0 else f"{target / 1e6:g} MB" if target >= 1e6 else f"{target / 1e3:g} KB"
        cell = f"sized {path} {size}"
        out += [((f"{cell} added TTFT p50 ms", "low"), record["added_p50_ms"]),
                ((f"{cell} added TTFT p99 ms", "low"), record["added_p99_ms"]),
                ((f"{cell} CPU ms/req", "low"), record["cpu_ms_per_request"])]
        if record["target_bytes"] >= 1_000_000:
            out.append(((f"control: msgspec decode {size} ms ({path})", "low"), record["msgspec_decode_ms"]))
    return out


def collect(records: list[dict[str, Any]]) -> tuple[list[Metric], dict[tuple[Metric, str], dict[int, float]]]:
    order: list[Metric] = []
    values: dict[tuple[Metric, str], dict[int, float]] = {}
    for r in records:
        for metric, value in metrics(r):
            if metric not in order:
                order.append(metric)
            values.setdefault((metric, r["side"]), {})[r["round"]] = value
    controls = [m for m in order if m[0].startswith("control:")]
    return [m for m in order if m not in controls] + controls, values


def fmt(v: float) -> str:
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.2f}" if abs(v) < 100 else f"{v:.1f}"


def compare(a: dict[int, float], b: dict[int, float]) -> tuple[float, float, float, list[float], bool]:
    """Medians, B against A, each side's spread, whether every B round is beyond every A round."""
    am, bm = statistics.median(a.values()), statistics.median(b.values())
    delta = (bm - am) / am if am else 0.0
    spread = [(max(v.values()) - min(v.values())) / abs(m) if m else 0.0 for v, m in ((a, am), (b, bm))]
    apart = len(a) > 1 and (min(b.values()) > max(a.values()) or max(b.values()) < min(a.values()))
    return am, bm, delta, spread, apart


def noise_floor(records: list[dict[str, Any]]) -> dict[Metric, float]:
    """Per metric, what an A/A sitting's records show for one commit against itself: the larger of
    the difference of the medians and half the larger spread."""
    order, values = collect(records)
    out: dict[Metric, float] = {}
    for metric in order:
        a, b = values.get((metric, "A")), values.get((metric, "B"))
        if a and b:
            _, _, delta, spread, _ = compare(a, b)
            out[metric] = max(abs(delta), max(spread) / 2)
    return out


def table(records: list[dict[str, Any]], noise: dict[Metric, float] | None = None, min_effect: float = 0.05) -> str:
    order, values = collect(records)
    rounds = sorted({r["round"] for r in records if "round" in r})
    head = ["metric", "A per round", "A median", "B per round", "B median", "B vs A", "spread A / B",
            *(["A/A noise"] if noise is not None else []), ""]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(" --- " for _ in head) + "|"]
    for metric in order:
        name, better = metric
        a, b = values.get((metric, "A"), {}), values.get((metric, "B"), {})
        if not a or not b:
            continue
        am, bm, delta, spread, apart = compare(a, b)
        floor = (noise or {}).get(metric)
        worse = bm > am if better == "low" else bm < am
        verdict = ""
        if apart and abs(delta) >= min_effect and (floor is None or abs(delta) > floor):
            verdict = "**worse**" if worse else "better"
        per_round = [" / ".join(fmt(v[r]) if r in v else "–" for r in rounds) for v in (a, b)]
        cells = [name, per_round[0], fmt(am), per_round[1], fmt(bm), f"{delta:+.1%}",
                 f"{spread[0]:.0%} / {spread[1]:.0%}"]
        if noise is not None:
            cells.append("–" if floor is None else f"{floor:.0%}")
        lines.append("| " + " | ".join([*cells, verdict]) + " |")
    rule = f"at least {min_effect:.0%}" + (" and beyond the A/A noise" if noise is not None else "")
    lines.append("")
    note = ("; A/A noise: the larger of |B vs A| and half the larger spread in an A/A sitting (the largest over "
            "the sittings given)") if noise is not None else ""
    lines.append(f"(B vs A: difference of the medians; spread: (max - min) / median over the rounds; **worse** / "
                 f"better: every B round beyond every A round and the difference {rule}{note})")
    return "\n".join(lines)


def side_record(side: Side) -> dict[str, Any]:
    python = str(side.venv / "bin" / "python") if side.venv else sys.executable
    code = ("import importlib.metadata as m, platform; print(f'Python {platform.python_version()}, ' + ', '.join("
            "f'{p} {m.version(p)}' for p in ('hypercorn', 'trio', 'msgspec', 'httpx')))")
    found = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    return {"scenario": "ab_side", "side": side.label, "src": str(side.src), "commit": commit(side.src),
            "venv": str(side.venv or Path(sys.executable).parent.parent), "versions": found, "config": str(side.config)}


def conditions(records: list[dict[str, Any]]) -> str:
    runs = [r for r in records if r.get("scenario") == "ab_run"]
    loads = [x for r in runs for x in (r["loadavg_1m_start"], r["loadavg_1m_end"])]
    steal = [r["steal_share_core0"] for r in runs]
    machine = next((r for r in records if r.get("scenario") == "machine"), {})
    out = [f"- {r['side']}: `{r['src']}` at `{r['commit']}`, venv `{r['venv']}` ({r['versions']}), "
           f"config `{r['config']}`" for r in records if r.get("scenario") == "ab_side"]
    if runs:
        out.append(f"- {len(runs)} runs, {sum(r['wall_s'] for r in runs) / 60:.1f} min; 1-minute load average "
                   f"{min(loads):.2f}-{max(loads):.2f}; steal on core 0 {min(steal):.1%}-{max(steal):.1%} per run; "
                   f"{machine.get('cores')} CPUs, {machine.get('cpu')}, kernel {machine.get('kernel')}")
        out.append("- in order: " + ", ".join(f"{r['round']}{r['side']}-{r['phase']}" for r in runs))
    return "\n".join(out)


# ---------------------------------------------------------------------- the sitting


def make_side(label: str, src: str, venv: str | None) -> Side:
    root = Path(src).resolve()
    if not (root / "pipeline").is_dir():
        raise SystemExit(f"{label}: {root} has no pipeline/ package")
    chosen: Path | None = Path(venv).resolve() if venv else root / ".venv"
    if chosen and not (chosen / "bin" / "hypercorn").exists():
        if venv:
            raise SystemExit(f"{label}: {chosen}/bin/hypercorn not found")
        print(f"{label}: no {chosen}/bin/hypercorn; its gateway runs with this venv ({sys.prefix})", flush=True)
        chosen = None
    config = root / "bench" / "pipelines.yaml"
    if not config.exists():
        config = run.REPO / "bench" / "pipelines.yaml"
    return Side(label, root, chosen, config)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__.splitlines()[0])
    p.add_argument("a", metavar="A_DIR", nargs="?", help="the 'before' checkout")
    p.add_argument("b", metavar="B_DIR", nargs="?", help="the 'after' checkout")
    p.add_argument("--venv-a", metavar="DIR", help="A's venv (default A_DIR/.venv)")
    p.add_argument("--venv-b", metavar="DIR", help="B's venv (default B_DIR/.venv)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--order", choices=["alternate", "ab"], default="alternate",
                   help="alternate: A,B then B,A in the next round (default); ab: A first in every round")
    p.add_argument("--phases", nargs="+", choices=["small", "sized"], default=["small", "sized"])
    p.add_argument("--paths", nargs="+", default=["chat", "messages", "responses"],
                   choices=["chat", "messages", "responses"], help="(sized: messages and responses only)")
    p.add_argument("--concurrency", nargs="+", type=int, default=[32, 256])
    p.add_argument("--seconds", type=float, default=3.0, help="measured window per load cell")
    p.add_argument("--warmup-s", type=float, default=1.0)
    p.add_argument("--ttft-n", type=int, default=300)
    p.add_argument("--hold", nargs="*", type=int, default=[256],
                   help="held stream counts for RSS (bare --hold: none)")
    p.add_argument("--sizes", nargs="+", type=int, default=[100_000, 1_000_000, 4_000_000],
                   help="bench.sized's history targets, bytes (the one-line request always runs)")
    p.add_argument("--sized-n", type=int, default=300, help="bench.sized -n: samples per size below 200 KB "
                   "(fewer above: 60 at 1 MB)")
    p.add_argument("--sized-min-n", type=int, default=40, help="bench.sized --min-n (40 at 4 MB)")
    p.add_argument("--quick", action="store_true", help="a smoke run: 1 round, short windows, 1 MB only")
    p.add_argument("--json", metavar="FILE", help="also write every record (tagged side, round, phase) to FILE")
    p.add_argument("--from", dest="from_", metavar="FILE", help="no runs: the table of an earlier sitting's --json")
    p.add_argument("--noise", nargs="+", metavar="FILE", help="A/A sittings' --json: their noise per metric (the "
                   "largest) as a column, and a difference is marked only beyond it")
    p.add_argument("--min-effect", type=float, default=0.05, help="smallest difference marked (default 0.05)")
    p.add_argument("--markdown", metavar="FILE", help="also write the table and conditions to FILE")
    args = p.parse_args(argv)
    if not args.from_ and not (args.a and args.b):
        p.error("A_DIR and B_DIR are required (or --from FILE)")
    if args.quick:
        args.rounds, args.seconds, args.warmup_s, args.ttft_n = 1, 1.5, 0.5, 60
        args.sizes, args.sized_n, args.sized_min_n, args.hold = [1_000_000], 40, 10, []
    return args


def read(path: str) -> list[dict[str, Any]]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    noise: dict[Metric, float] | None = None
    for path in args.noise or []:
        noise = noise or {}
        for metric, floor in noise_floor(read(path)).items():
            noise[metric] = max(floor, noise.get(metric, 0.0))
    t0 = time.monotonic()
    if args.from_:
        records = read(args.from_)
    else:
        sides = [make_side("A", args.a, args.venv_a), make_side("B", args.b, args.venv_b)]
        records = [run.machine(), *(side_record(s) for s in sides)]
        for r in records[1:]:
            print(f"{r['side']}: {r['src']} @ {r['commit']}, {r['versions']}", flush=True)
        run.raise_fd_limit()
        os.sched_setaffinity(0, {LOAD_CORE})  # the load generator shares core 1 with the fake upstream
        try:
            for round_no in range(1, args.rounds + 1):
                turn = sides if args.order == "ab" or round_no % 2 else sides[::-1]
                for phase in args.phases:
                    for side in turn:
                        records += one_run(phase, side, round_no, args)
        finally:
            if args.json:
                with open(args.json, "w") as f:
                    for r in records:
                        f.write(json.dumps(r) + "\n")
    rounds = len({r["round"] for r in records if "round" in r})
    report = f"{table(records, noise, args.min_effect)}\n\n{conditions(records)}"
    print(f"\nA/B, {rounds} rounds, {(time.monotonic() - t0) / 60:.1f} min\n\n{report}")
    if args.markdown:
        Path(args.markdown).write_text(report + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
