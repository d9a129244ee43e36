"""A request body that stops arriving: ``server.body_timeout_s`` (no progress for that long) and the
pipeline's ``deadline_s`` (the whole request, body included) end it in a 408 in the client's
dialect with ``connection: close``, and the server closes the connection. A slow body that keeps
moving is served. Raw sockets through hypercorn on 127.0.0.1."""

from __future__ import annotations

import httpx
import msgspec
import pytest
import trio

from tests.e2e.serving import SIM, open_gateway
from tests.resilience.dialects import DIALECTS, PATHS, auth_headers, fold, request_body
from tests.resilience.raw_http import RawConnection, Response

BODY_TIMEOUT_S = 1.0
DRIP_DEADLINE_S = 2.0
MARGIN_S = 1.5
CONFIG = (f"server: {{body_timeout_s: {BODY_TIMEOUT_S:g}}}\nupstreams:\n  sim: {{{SIM}}}\npipelines:\n"
          + "".join(f"  {d}: {{client: {d}, upstream: sim, mount: /{d}}}\n" for d in DIALECTS)
          + f"  drip: {{client: chat, upstream: sim, mount: /drip, deadline_s: {DRIP_DEADLINE_S:g}}}\n")
TIMEOUT_KIND = {"anthropic": "timeout_error", "responses": "request_timeout", "chat": "request_timeout"}


def head(dialect: str, length: int, mount: str | None = None) -> bytes:
    headers = {"host": "gateway", "content-type": "application/json", "content-length": str(length),
               **auth_headers(dialect, "k")}
    path = f"/{dialect if mount is None else mount}{PATHS[dialect]}"
    return (f"POST {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()


async def stalled(url: str, dialect: str, mount: str | None = None) -> tuple[RawConnection, float]:
    """A connection that sent its headers (``content-length: 1000``) and ``{"mo``, then nothing."""
    conn = await RawConnection.open(url)
    await conn.stream.send_all(head(dialect, 1000, mount) + b'{"mo')
    return conn, trio.current_time()


def assert_timeout(dialect: str, response: Response) -> None:
    assert response.status == 408, response.body[:300]
    assert response.headers.get("connection", "").lower() == "close"
    reply = fold(dialect, 408, httpx.Headers(), response.body)
    assert reply.error_kind == TIMEOUT_KIND[dialect], reply.error
    assert "request body incomplete: 4 of 1000 bytes received" in reply.error["message"]


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_stalled_body_gets_408_and_is_closed(dialect: str, sim) -> None:
    """Headers, 4 of 1000 body bytes, silence: a 408 after the body timeout (not before), then
    the server closes the connection."""
    async with open_gateway(CONFIG, sim=sim) as (url, _):
        conn, sent = await stalled(url, dialect)
        try:
            with trio.fail_after(BODY_TIMEOUT_S + MARGIN_S):
                response = await conn.read_response()
            assert response.done_at - sent >= BODY_TIMEOUT_S * 0.9
            assert_timeout(dialect, response)
            assert "then no more of it for 1s" in response.body.decode()
            assert await conn.closed_within(1.0)
        finally:
            await conn.aclose()


async def test_many_stalled_bodies_are_all_closed(sim) -> None:
    """200 stalled bodies at once (the three dialects in turn): every one gets its 408 within the
    timeout plus a margin and is closed by the server."""
    async with open_gateway(CONFIG, sim=sim) as (url, _):
        start = trio.current_time()

        async def one(i: int) -> None:
            dialect = DIALECTS[i % len(DIALECTS)]
            conn, _sent = await stalled(url, dialect)
            try:
                with trio.fail_after(BODY_TIMEOUT_S + 3 * MARGIN_S - (trio.current_time() - start)):
                    response = await conn.read_response()
                    assert_timeout(dialect, response)
                    assert await conn.closed_within(1.0)
            finally:
                await conn.aclose()

        async with trio.open_nursery() as nursery:
            for i in range(200):
                nursery.start_soon(one, i)


async def test_dripping_body_ends_at_the_pipeline_deadline(sim) -> None:
    """A byte every 0.2 s never trips the no-progress limit; the pipeline's deadline (2 s here,
    counted from the request's arrival) bounds it with the same 408."""
    async with open_gateway(CONFIG, sim=sim) as (url, _):
        conn, sent = await stalled(url, "chat", mount="drip")
        try:
            with trio.fail_after(DRIP_DEADLINE_S + MARGIN_S):
                async with trio.open_nursery() as nursery:

                    async def drip() -> None:
                        for _ in range(100):
                            await trio.sleep(0.2)
                            await conn.stream.send_all(b" ")

                    nursery.start_soon(drip)
                    response = await conn.read_response()
                    nursery.cancel_scope.cancel()
            assert response.done_at - sent >= DRIP_DEADLINE_S * 0.9
            assert response.status == 408 and response.headers.get("connection") == "close"
            assert "then the pipeline deadline of 2s" in response.body.decode()
            assert await conn.closed_within(1.0)
        finally:
            await conn.aclose()


async def test_slow_body_that_keeps_moving_is_served(sim) -> None:
    """A body sent in 6 pieces 0.35 s apart (2.1 s in all, past the 1 s limit, each piece within
    it) is answered normally in every dialect: the limit is on silence, not on the body's total
    time."""
    async with open_gateway(CONFIG, sim=sim) as (url, _):

        async def one(dialect: str) -> None:
            body = msgspec.json.encode(request_body(dialect, "SIM:text slow but fine", stream=False))
            conn = await RawConnection.open(url)
            try:
                await conn.stream.send_all(head(dialect, len(body)))
                for i in range(6):
                    await trio.sleep(0.35)
                    await conn.stream.send_all(body[i * len(body) // 6:(i + 1) * len(body) // 6])
                with trio.fail_after(10):
                    response = await conn.read_response()
                assert response.status == 200, response.body[:300]
                assert b"slow but fine" in response.body
            finally:
                await conn.aclose()

        async with trio.open_nursery() as nursery:
            for dialect in DIALECTS:
                nursery.start_soon(one, dialect)
