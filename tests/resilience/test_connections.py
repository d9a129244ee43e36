"""Who closes a client connection after a generate request, and when: through hypercorn on
127.0.0.1 on raw sockets, for every dialect, streaming and not. ``Connection: close`` and HTTP/1.0
are honoured (the server closes right after the response), and an idle keep-alive connection
closes at hypercorn's ``keep_alive_timeout``. (hypercorn ends the exchange inside the app's final
``send``; a cancellation there, from the disconnect watcher, left every connection open.)"""

from __future__ import annotations

import httpx
import msgspec
import pytest
import trio

from tests.e2e.serving import SIM, open_gateway
from tests.resilience.dialects import DIALECTS, SHIPPED_STAGES, fold
from tests.resilience.raw_http import RawConnection, Response, request_bytes

CONFIG = "upstreams:\n  sim: {" + SIM + "}\npipelines:\n" + "".join(
    f"  {d}: {{client: {d}, upstream: sim, mount: /{d}, stages: {SHIPPED_STAGES[d]}}}\n" for d in DIALECTS)
CELLS = [(d, stream) for d in DIALECTS for stream in (True, False)]
PROMPT = "SIM:text all good here"
CLOSE_S = 1.0  # the server closes within this of the response's last byte
KEEP_ALIVE_S = 1.0


def assert_answered(dialect: str, stream: bool, response: Response) -> None:
    assert response.status == 200, response.body[:300]
    if stream:
        reply = fold(dialect, 200, httpx.Headers(), response.body)
        assert reply.complete and reply.error is None and reply.text == "all good here"
    else:
        assert msgspec.json.decode(response.body)


async def one_exchange(url: str, dialect: str, stream: bool, *, version: str = "1.1", close: bool = False
                       ) -> tuple[RawConnection, Response]:
    conn = await RawConnection.open(url)
    await conn.stream.send_all(request_bytes(dialect, PROMPT, stream=stream, version=version, close=close,
                                             mount=f"/{dialect}"))
    with trio.fail_after(10):
        response = await conn.read_response()
    assert_answered(dialect, stream, response)
    return conn, response


async def run_all(count: int, concurrency: int, job) -> None:
    """``job(i)`` for i in range(count), ``concurrency`` at a time; the first failure stops all."""
    limit = trio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with limit:
            await job(i)

    async with trio.open_nursery() as nursery:
        for i in range(count):
            await limit.acquire()  # start no more tasks than run at once
            limit.release()
            nursery.start_soon(one, i)


async def test_connection_close_is_honoured(sim) -> None:
    """1,000 connections, each one generate request with ``Connection: close`` (the six cells in
    turn): the server closes every one within a second of its response."""
    async with open_gateway(CONFIG, sim=sim) as (url, _):

        async def job(i: int) -> None:
            dialect, stream = CELLS[i % len(CELLS)]
            conn, response = await one_exchange(url, dialect, stream, close=True)
            try:
                assert await conn.closed_within(CLOSE_S), f"{dialect} stream={stream}: still open {CLOSE_S}s after the response"
            finally:
                await conn.aclose()

        await run_all(1000, 50, job)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
async def test_http10_is_closed(dialect: str, stream: bool, sim) -> None:
    """An HTTP/1.0 request (no keep-alive) is closed after its response; a stream to it is framed
    by that close."""
    async with open_gateway(CONFIG, sim=sim) as (url, _):
        for _ in range(5):
            conn, response = await one_exchange(url, dialect, stream, version="1.0")
            try:
                assert response.headers.get("transfer-encoding") is None
                assert await conn.closed_within(CLOSE_S)
            finally:
                await conn.aclose()


async def test_idle_keep_alive_closes_at_the_timeout(sim) -> None:
    """After generate requests, an idle keep-alive connection is closed by hypercorn's
    ``keep_alive_timeout`` (1 s here): two requests on each connection (it is reused), then the
    server closes it between the timeout and the timeout plus a margin after the second."""
    async with open_gateway(CONFIG, sim=sim, keep_alive_timeout=KEEP_ALIVE_S) as (url, _):

        async def job(i: int) -> None:
            dialect, stream = CELLS[i % len(CELLS)]
            conn, _first = await one_exchange(url, dialect, stream)
            try:
                await conn.stream.send_all(request_bytes(dialect, PROMPT, stream=stream, mount=f"/{dialect}"))
                with trio.fail_after(10):
                    response = await conn.read_response()
                assert_answered(dialect, stream, response)
                closed = await conn.closed_within(KEEP_ALIVE_S + 1.5)
                idle = trio.current_time() - response.done_at
                assert closed, f"{dialect} stream={stream}: still open {idle:.2f}s after the response"
                assert idle >= KEEP_ALIVE_S * 0.8, f"closed after {idle:.2f}s, before the keep-alive timeout"
            finally:
                await conn.aclose()

        await run_all(60, 30, job)
