"""Malformed requests against the real ``hypercorn -k trio pipeline:app`` process (one spawned
worker, as the README runs it): bytes after a ``Connection: close`` request, and a
``Content-Length`` shorter than the body, used to end the worker (pgjones/hypercorn#203, fixed by
pipeline/hypercorn_patch.py). 1,000 of them must leave the same worker serving."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio

from tests.conftest import ROOT
from tests.resilience.dialects import DIALECTS, PATHS, auth_headers, request_body
from tests.resilience.gateway_process import GatewayProcess, open_gateway_process

CONFIG = """
upstreams:
  sim: {type: simulator}
pipelines:
""" + "".join(f"  {d}: {{client: {d}, upstream: sim, mount: /demo}}\n" for d in DIALECTS)
REQUESTS = 1000
CONCURRENCY = 50


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[GatewayProcess]:
    with open_gateway_process(tmp_path, CONFIG) as gateway:
        yield gateway


def malformed(i: int) -> bytes:
    """Request ``i``: /healthz or one dialect's generate endpoint; ``Connection: close`` and then
    more bytes, or a Content-Length 10 bytes short of what is sent (cutting the JSON, or not)."""
    target = ("healthz", *DIALECTS)[i % 4]
    close = i % 8 < 4
    if target == "healthz":
        method, path, body, headers = "GET", "/healthz", b"", {}
    else:
        method, path = "POST", "/demo" + PATHS[target]
        body = json.dumps(request_body(target, "SIM:text ok", stream=i % 3 == 0)).encode()
        headers = {"content-type": "application/json", **auth_headers(target, "k")}
    if close:
        headers["connection"] = "close"
        if body:
            headers["content-length"] = str(len(body))
        tail = b"JUNK"
    elif i % 16 < 12:  # the declared length cuts the JSON
        body = body or b'{"padding": "for the declared length"}'
        headers["content-length"] = str(len(body) - 10)
        tail = b""
    else:  # the declared length is the whole JSON, 10 more bytes follow
        headers["content-length"] = str(len(body))
        tail = b"\r\nJUNKJUNK"
    head = f"{method} {path} HTTP/1.1\r\nhost: x\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode() + b"\r\n" + body + tail


async def send_malformed(port: int) -> tuple[int, int]:
    """Send them all, ``CONCURRENCY`` connections at a time; returns how many got an answer and
    how many connections were refused."""
    answered = refused = 0
    limit = trio.Semaphore(CONCURRENCY)

    async def one(i: int) -> None:
        nonlocal answered, refused
        async with limit:
            with trio.move_on_after(5):
                try:
                    stream = await trio.open_tcp_stream("127.0.0.1", port)
                except OSError:
                    refused += 1
                    return
                async with stream:
                    try:
                        await stream.send_all(malformed(i))
                        first = await stream.receive_some(65536)
                        answered += first.startswith(b"HTTP/1.1 ")
                        await stream.send_eof()  # the client is done: the rest is a partial request
                        while await stream.receive_some(65536):
                            pass
                    except trio.BrokenResourceError:  # a reset after the answer is fine
                        pass

    async with trio.open_nursery() as nursery:
        for i in range(REQUESTS):
            nursery.start_soon(one, i)
    return answered, refused


async def test_malformed_requests_leave_the_worker_serving(gateway: GatewayProcess) -> None:
    workers = gateway.workers()
    started = time.monotonic()
    answered, refused = await send_malformed(int(gateway.url.rsplit(":", 1)[1]))
    elapsed = time.monotonic() - started
    assert (refused, gateway.proc.poll()) == (0, None), f"gateway gone: {refused} connections refused"
    assert gateway.workers() == workers  # the same worker: it was not replaced after a crash either
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        health = await http.get("/healthz")
        replies = [await http.post(f"/demo{PATHS[d]}", json=request_body(d, "SIM:text still here", stream=False),
                                   headers=auth_headers(d, "k")) for d in DIALECTS]
    assert health.status_code == 200
    assert [r.status_code for r in replies] == [200, 200, 200]
    assert "still here" in replies[2].json()["choices"][0]["message"]["content"]
    log = gateway.log.read_text()
    assert "BusyResourceError" not in log and "connection_failed" not in log and "worker_crashed" not in log
    assert answered > REQUESTS * 0.9, answered  # they were answered (400 or 200), not dropped
    assert elapsed < 20, elapsed


async def test_a_worker_that_fails_anyway_is_replaced(tmp_path: Path) -> None:
    """Whatever ends the worker at runtime, the port does not stay closed: hypercorn's parent
    would exit with status 0 after a worker failure; it starts a new worker instead."""
    marker = tmp_path / "fail-now"
    config = CONFIG.replace("client: chat,", "client: chat, stages: ['worker_fault:Inert'],")
    env = {"GW_TEST_WORKER_FAULT": str(marker), "PYTHONPATH": str(ROOT / "tests" / "fixtures")}
    with open_gateway_process(tmp_path, config, env) as gateway:
        first = gateway.workers()
        marker.touch()
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{gateway.url}/healthz", timeout=5)
        deadline = time.monotonic() + 30
        while gateway.workers() in ([], first):
            assert gateway.proc.poll() is None, f"gateway exited ({gateway.proc.returncode})"
            assert time.monotonic() < deadline, "no new worker"
            time.sleep(0.05)
        gateway.wait_healthy()
        reply = httpx.post(f"{gateway.url}/demo/v1/chat/completions", timeout=10,
                           json=request_body("chat", "SIM:text back", stream=False))
        assert reply.status_code == 200 and gateway.proc.poll() is None
        assert not marker.exists() and '"event":"worker_crashed"' in gateway.log.read_text()
