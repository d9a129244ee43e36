"""Load: 256 concurrent streams through a real gateway process (``hypercorn -k trio -w 0``) and its
production transport to the simulator server (its own process, a per-chunk delay so all streams
are open together: 256 upstream connections at once). Three waves of mixed
Anthropic / Responses / Chat streams: each ends whole, the peak RSS stays bounded, and the third
wave does not grow the process past the second (no leak). The RSS figures print with ``-s``."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest
import trio

from tests.e2e.serving import SIM
from tests.resilience.dialects import DIALECTS, PATHS, SHIPPED_STAGES, auth_headers, fold, request_body
from tests.resilience.gateway_process import open_gateway_process

STREAMS = 256
WORDS = " ".join(f"w{i}" for i in range(40))
CONFIG = """
upstreams:
  sim: {%s}
pipelines:
""" % SIM + "".join(f"  {d}: {{client: {d}, upstream: sim, mount: /{d}, stages: {SHIPPED_STAGES[d]}}}\n" for d in DIALECTS)


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of ``pid`` in kB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


@pytest.fixture
def gateway_process(tmp_path: Path, sim):
    sim.reset(chunk_delay_s=0.2, history=8)  # 22 pieces: 4.4 s, for all 256 to open meanwhile
    with open_gateway_process(tmp_path, CONFIG, {"SIM_URL": sim.url}, ("-w", "0", "--backlog", "1024")) as gateway:
        yield gateway.url, gateway.proc.pid, gateway.log, sim


async def wave(url: str, pid: int) -> tuple[list, int, int]:
    """256 streams at once; returns (replies, most streams open at once, peak RSS kB meanwhile)."""
    replies: list = [None] * STREAMS
    open_now = most_open = peak = 0
    done = trio.Event()

    async def one(http: httpx.AsyncClient, i: int) -> None:
        nonlocal open_now, most_open
        dialect = DIALECTS[i % 3]
        async with http.stream("POST", f"{url}/{dialect}{PATHS[dialect]}", json=request_body(dialect, f"SIM:text {WORDS}"),
                               headers=auth_headers(dialect, "k")) as response:
            open_now += 1
            most_open = max(most_open, open_now)
            raw = await response.aread()
            open_now -= 1
        replies[i] = (dialect, fold(dialect, response.status_code, response.headers, raw))

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            if open_now >= STREAMS // 2:
                peak = max(peak, rss_kb(pid)[0])
            await trio.sleep(0.02)

    limits = httpx.Limits(max_connections=STREAMS + 16, max_keepalive_connections=STREAMS + 16)
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(30.0)) as http:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sample)
            async with trio.open_nursery() as clients:
                for i in range(STREAMS):
                    clients.start_soon(one, http, i)
            done.set()
    return replies, most_open, peak


async def test_256_concurrent_streams_bounded_memory(gateway_process) -> None:
    """Every stream ends whole, all 256 are open together, memory stays bounded and, once warm
    (allocator arenas, caches: the first wave), flat."""
    url, pid, log_path, sim = gateway_process
    idle_kb = rss_kb(pid)[0]
    started = time.monotonic()
    waves = []
    with trio.fail_after(55):
        for _ in range(3):
            waves.append(await wave(url, pid))
    elapsed = time.monotonic() - started
    for replies, most_open, _ in waves:
        assert most_open == STREAMS
        for dialect, reply in replies:
            assert reply.status == 200 and reply.error is None and reply.complete, (dialect, reply.raw[-300:])
            assert reply.text == WORDS
    peaks = [peak for _, _, peak in waves]
    print(f"\ngateway RSS: idle {idle_kb / 1024:.1f} MB; with {STREAMS} streams open, per wave: "
          + " / ".join(f"{p / 1024:.1f} MB" for p in peaks)
          + f"; high-water {rss_kb(pid)[1] / 1024:.1f} MB; {3 * STREAMS} streams in {elapsed:.1f}s"
          + f"; CPU: gateway {cpu_s(pid):.1f}s, simulator {cpu_s(sim.pid):.1f}s")
    assert max(peaks) < 250 * 1024
    assert peaks[2] - peaks[1] < 8 * 1024, "memory grew between identical warm waves"
    log = log_path.read_text()
    assert log.count('"request_finished"') == 3 * STREAMS and sim.chat_requests == 3 * STREAMS
    assert "Traceback" not in log and '"error"' not in log.replace('"error_code"', "")
