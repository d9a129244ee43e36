"""Memory under long sessions: N concurrent sessions of a grown history each, streaming.

``python -m bench.sessions_rss [N] [SIZE]`` (default 64 sessions of 1 MB; ~1 minute) starts the
gateway on core 0 and the fake upstream on core 1, warms the gateway with five one-line
requests (``rss_base_mb``), then sends every session's request at once on its own connection
with ``fake-hold`` (the first delta, then the stream held 6 s): the worker's peak RSS while they
stream and its RSS after they end; then every session's next request (the same history plus one
tool turn, ``bench.history.session``), the same way. Per session: (peak - base) / N and
(RSS after the second turn - base) / N. ``GW_SRC=DIR`` runs the gateway from another tree (on
``PYTHONPATH``), for a before/after.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path

from bench import loadgen
from bench.history import session
from bench.procs import REPO, FakeUpstream, Gateway, free_port, rss_kb
from bench.scenarios import PATHS

HOST = "127.0.0.1"
SMALL = b'{"model":"fake-whole","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}'


async def run(n: int, size: int) -> dict[str, object]:
    os.sched_setaffinity(0, {1})
    tmp = Path(tempfile.mkdtemp(prefix="bench-rss-"))
    up_port = free_port()
    upstream = FakeUpstream(core=1, port=up_port, log=tmp / "upstream.log", deltas=200, hold_s=6.0)
    upstream.start()
    src = Path(os.environ.get("GW_SRC", REPO)).resolve()
    os.environ["PYTHONPATH"] = str(src)
    gw = Gateway(core=0, port=free_port(), log=tmp / "gateway.log", config=REPO / "bench" / "pipelines.yaml",
                 upstream_port=up_port, src=src)
    gw.start()
    try:
        sessions = [session("messages", size, "fake-hold", 2) for _ in range(n)]
        spec = PATHS["messages"]
        conn = loadgen.Connection(HOST, gw.port)
        for _ in range(5):
            await conn.request(loadgen.http_request(HOST, gw.port, spec.url, SMALL, spec.headers))
        conn.close()
        base = rss_kb(gw.pid)
        out: dict[str, object] = {"scenario": "sessions_rss", "gateway_src": str(src), "sessions": n,
                                  "body_bytes": len(sessions[0][0].data), "rss_base_mb": round(base / 1024, 1)}
        for turn in (0, 1):
            conns = [loadgen.Connection(HOST, gw.port) for _ in range(n)]
            peak, done = 0, asyncio.Event()

            async def poll() -> None:
                nonlocal peak
                while not done.is_set():
                    peak = max(peak, rss_kb(gw.pid))
                    await asyncio.sleep(0.05)

            poller = asyncio.create_task(poll())
            replies = await asyncio.gather(*(
                c.request(loadgen.http_request(HOST, gw.port, spec.url, s[turn].data,
                                               {**spec.headers, "x-request-id": f"rss-{i}-{turn}"}))
                for i, (c, s) in enumerate(zip(conns, sessions, strict=True))))
            done.set()
            await poller
            for c in conns:
                c.close()
            await asyncio.sleep(0.5)
            out[f"turn{turn}_peak_mb"] = round(peak / 1024, 1)
            out[f"turn{turn}_after_mb"] = round(rss_kb(gw.pid) / 1024, 1)
            out[f"turn{turn}_errors"] = sum(r.status != 200 for r in replies)
        peak_mb = max(float(out["turn0_peak_mb"]), float(out["turn1_peak_mb"]))  # type: ignore[arg-type]
        out["peak_per_session_mb"] = round((peak_mb - base / 1024) / n, 2)
        out["retained_per_session_mb"] = round((float(out["turn1_after_mb"]) - base / 1024) / n, 2)  # type: ignore[arg-type]
        return out
    finally:
        gw.stop()
        upstream.stop()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    n = int(args[0]) if args else 64
    size = int(args[1]) if len(args) > 1 else 1_000_000
    print(json.dumps(asyncio.run(run(n, size))), flush=True)


if __name__ == "__main__":
    main()
