"""A client that stops reading a long stream: the pipeline's ``deadline_s`` and the server's
``write_timeout_s`` still end the request, abort the client's connection and close the upstream
(pipeline/hypercorn_patch.py; hypercorn's own writes are shielded and unbounded)."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest
import trio

from tests.e2e.serving import SIM, open_gateway
from tests.resilience.dialects import PATHS, auth_headers, request_body

CONFIG = """
server: {write_timeout_s: %s}
upstreams:
  sim: {%s}
pipelines:
  chat: {mount: /s, client: chat, upstream: sim, deadline_s: %s}
  anthropic: {mount: /s, client: anthropic, upstream: sim, deadline_s: %s}
"""
# ~150,000 words answered 3 per chunk: ~9 MB of SSE, far more than the socket buffers hold.
LONG = "SIM:text " + "w " * 150_000


async def stuck_request(url: str, dialect: str) -> trio.socket.SocketType:
    """Send a streaming request for a long answer from a socket with a small receive buffer,
    and never read it."""
    body = request_body(dialect, LONG)
    body["max_tokens"] = 300_000
    data = json.dumps(body).encode()
    host, port = url.removeprefix("http://").split(":")
    head = [f"POST /s{PATHS[dialect]} HTTP/1.1", f"host: {host}", "content-type: application/json",
            f"content-length: {len(data)}"] + [f"{k}: {v}" for k, v in auth_headers(dialect, "k").items()]
    sock = trio.socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    await sock.connect((host, int(port)))
    payload = memoryview(("\r\n".join(head) + "\r\n\r\n").encode() + data)
    while payload:
        payload = payload[await sock.send(payload):]
    return sock


async def read_to_end(sock: trio.socket.SocketType, limit_s: float) -> bool:
    """Read until the server ends the connection (True), or ``limit_s`` passes (False)."""
    with trio.move_on_after(limit_s):
        try:
            while await sock.recv(1 << 20):
                pass
        except ConnectionResetError:
            pass
        return True
    return False


@pytest.mark.parametrize(("dialect", "deadline_s", "write_timeout_s"), [
    ("chat", 2, 60),          # the pipeline's deadline passes while the write is blocked
    ("anthropic", 900, 1.5),  # the client takes nothing for write_timeout_s
])
async def test_stuck_reader_is_cut_off_and_the_upstream_closed(sim, dialect: str, deadline_s: float,
                                                                write_timeout_s: float) -> None:
    limit = min(deadline_s, write_timeout_s)
    config = CONFIG % (write_timeout_s, SIM, deadline_s, deadline_s)
    async with open_gateway(config, sim=sim) as (url, _):
        started = time.monotonic()
        sock = await stuck_request(url, dialect)
        with sock:  # closed on failure too: without the fix the server's shutdown waits for it
            record = None
            while time.monotonic() < started + limit + 6:  # without the fix: open while the client is
                await trio.sleep(0.1)
                records = [r for r in await trio.to_thread.run_sync(sim.connections) if r.request_no]
                if records and records[-1].closed_at is not None:
                    record = records[-1]
                    break
            assert record is not None, "the upstream stream is still open"
            assert not record.complete  # the client's backpressure did hold the upstream back
            # The gateway starts the clock once the body is in: within ~1 s after the limit.
            assert record.closed_at - started < limit + 1.0, record.closed_at - started
            assert await read_to_end(sock, 10), "the client's connection is still open"
        async with httpx.AsyncClient() as http:  # the gateway serves the others meanwhile
            ok = await http.post(f"{url}/s{PATHS[dialect]}", json=request_body(dialect, "SIM:text fine", stream=False),
                                 headers=auth_headers(dialect, "k"))
        assert ok.status_code == 200
