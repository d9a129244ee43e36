"""Memory under long sessions: N concurrent sessions of a grown history each, streaming, with the
conversation memory on and, in the same run, off.

``python -m bench.sessions_rss [N] [SIZE] [TURNS]`` (default 64 sessions of 1 MB, 3 turns each;
~1.5 minutes; ``--json FILE`` also writes the records) starts the
fake upstream on core 1 and, in turn, two gateways on core 0: one on ``bench/pipelines.yaml`` as it
is (the conversation memory on: ``server.conversation_memory_mb`` 256 by default) and one on a copy
with ``conversation_memory_mb: 0`` (off). Each is warmed with five one-line requests
(``rss_base_mb``), then every session's request is sent at once on its own connection with
``fake-hold`` (the first delta, then the stream held 6 s): the worker's peak RSS while they stream
and its RSS after they end; then every session's next request (the same history plus one tool
turn, ``bench.history.session``), the same way, TURNS times in all. Per session: (peak - base) / N
and (RSS after the last turn - base) / N, and what each turn after the first added to the RSS
after it (``growth_per_turn_mb``: the memory replaces a session's last request with its next, so
it should not grow with the turns); the last record is the memory's cost, on minus off. The sessions are
distinct conversations (their own envelopes, their own numbered prompt in the first message: the
memory finds a conversation by its first item, and 64 copies of one would be one conversation).
``GW_SRC=DIR`` runs the gateway from another tree (on ``PYTHONPATH``), for a before/after.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path

import yaml

from bench import loadgen
from bench.history import session
from bench.procs import REPO, FakeUpstream, Gateway, free_port, rss_kb
from bench.scenarios import PATHS

HOST = "127.0.0.1"
SMALL = b'{"model":"fake-whole","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}'


PROMPT = b'"text":"Create out.txt containing hello."'  # the capture's user prompt, in message 0


def config(memory_mb: int | None, tmp: Path) -> Path:
    """``bench/pipelines.yaml``, or a copy with ``server.conversation_memory_mb`` set."""
    path = REPO / "bench" / "pipelines.yaml"
    if memory_mb is None:
        return path
    data = yaml.safe_load(path.read_text())
    data.setdefault("server", {})["conversation_memory_mb"] = memory_mb
    copy = tmp / f"pipelines-memory-{memory_mb}.yaml"
    copy.write_text(yaml.safe_dump(data, sort_keys=False))
    return copy


def sessions(n: int, size: int, turns: int) -> list[list[bytes]]:
    """``n`` distinct sessions of ``turns`` requests each: their own envelopes (sealed afresh) and their
    own first message (the prompt numbered), so that each is its own conversation in the gateway's
    memory, which finds a conversation by its first history item."""
    out = []
    for i in range(n):
        bodies = [b.data for b in session("messages", size, "fake-hold", turns)]
        mine = PROMPT[:-1] + f' ({i})"'.encode()
        if any(PROMPT not in b for b in bodies):
            raise RuntimeError("the capture's prompt is not in the session's first message")
        out.append([b.replace(PROMPT, mine, 1) for b in bodies])
    return out


async def measure(label: str, cfg: Path, bodies: list[list[bytes]], tmp: Path, up_port: int,
                  src: Path) -> dict[str, object]:
    """One fresh gateway on ``cfg``: its base RSS, then each turn's peak and after, per session."""
    n = len(bodies)
    gw = Gateway(core=0, port=free_port(), log=tmp / f"gateway-{label}.log", config=cfg, upstream_port=up_port, src=src)
    gw.start()
    try:
        spec = PATHS["messages"]
        conn = loadgen.Connection(HOST, gw.port)
        for _ in range(5):
            await conn.request(loadgen.http_request(HOST, gw.port, spec.url, SMALL, spec.headers))
        conn.close()
        base = rss_kb(gw.pid)
        out: dict[str, object] = {"scenario": "sessions_rss", "conversation_memory": label, "gateway_src": str(src),
                                  "sessions": n, "body_bytes": len(bodies[0][0]), "rss_base_mb": round(base / 1024, 1)}
        turns = len(bodies[0])
        for turn in range(turns):
            conns = [loadgen.Connection(HOST, gw.port) for _ in range(n)]
            peak, done = 0, asyncio.Event()

            async def poll() -> None:
                nonlocal peak
                while not done.is_set():
                    peak = max(peak, rss_kb(gw.pid))
                    await asyncio.sleep(0.05)

            poller = asyncio.create_task(poll())
            replies = await asyncio.gather(*(
                c.request(loadgen.http_request(HOST, gw.port, spec.url, s[turn],
                                               {**spec.headers, "x-request-id": f"rss-{label}-{i}-{turn}"}))
                for i, (c, s) in enumerate(zip(conns, bodies, strict=True))))
            done.set()
            await poller
            for c in conns:
                c.close()
            await asyncio.sleep(0.5)
            out[f"turn{turn}_peak_mb"] = round(peak / 1024, 1)
            out[f"turn{turn}_after_mb"] = round(rss_kb(gw.pid) / 1024, 1)
            out[f"turn{turn}_errors"] = sum(r.status != 200 for r in replies)
        after = [float(out[f"turn{t}_after_mb"]) for t in range(turns)]  # type: ignore[arg-type]
        peak_mb = max(float(out[f"turn{t}_peak_mb"]) for t in range(turns))  # type: ignore[arg-type]
        out["peak_mb"] = peak_mb
        out["after_mb"] = after[-1]
        out["peak_per_session_mb"] = round((peak_mb - base / 1024) / n, 2)
        out["retained_per_session_mb"] = round((after[-1] - base / 1024) / n, 2)
        out["growth_per_turn_mb"] = [round(b - a, 1) for a, b in zip(after, after[1:])]
        return out
    finally:
        gw.stop()


async def run(n: int, size: int, turns: int = 3, memories: tuple[str, ...] = ("on", "off")
              ) -> list[dict[str, object]]:
    """The same sessions against a gateway with the conversation memory on (the config as it is:
    ``server.conversation_memory_mb`` 256 by default) and one with it off (a copy with 0); then
    what the memory costs, on minus off."""
    os.sched_setaffinity(0, {1})
    tmp = Path(tempfile.mkdtemp(prefix="bench-rss-"))
    up_port = free_port()
    upstream = FakeUpstream(core=1, port=up_port, log=tmp / "upstream.log", deltas=200, hold_s=6.0)
    upstream.start()
    src = Path(os.environ.get("GW_SRC", REPO)).resolve()
    os.environ["PYTHONPATH"] = str(src)
    records: list[dict[str, object]] = []
    try:
        bodies = sessions(n, size, turns)
        for label in memories:
            record = await measure(label, config(None if label == "on" else 0, tmp), bodies, tmp, up_port, src)
            records.append(record)
            print(json.dumps(record), flush=True)
    finally:
        upstream.stop()
    by = {r["conversation_memory"]: r for r in records}
    if {"on", "off"} <= set(by):
        on, off = by["on"], by["off"]
        cost: dict[str, object] = {"scenario": "sessions_rss_memory_cost", "sessions": n, "body_bytes": on["body_bytes"]}
        for field in ("peak_mb", "turn0_after_mb", "after_mb", "peak_per_session_mb", "retained_per_session_mb"):
            cost[f"{field}_on_minus_off"] = round(float(on[field]) - float(off[field]), 2)  # type: ignore[arg-type]
        records.append(cost)
        print(json.dumps(cost), flush=True)
    return records


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    out = None
    if "--json" in args:
        at = args.index("--json")
        out = Path(args[at + 1])
        del args[at:at + 2]
    n = int(args[0]) if args else 64
    size = int(args[1]) if len(args) > 1 else 1_000_000
    turns = int(args[2]) if len(args) > 2 else 3
    records = asyncio.run(run(n, size, turns))
    if out is not None:
        out.write_text("".join(json.dumps(r) + "\n" for r in records))


if __name__ == "__main__":
    main()
