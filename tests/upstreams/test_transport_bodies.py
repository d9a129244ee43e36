"""Request and response bodies at the size of real work through the production transport
(``LeanClient`` and ``httpx.AsyncClient`` over ``StreamTransport``) to a real HTTP server on
127.0.0.1 in threads of its own (``http_upstream``), which checks every byte it got.

Sizes sweep 0 B to 32 MB (``server.max_body_bytes``) on both sides of 16 KB, 64 KB and 1 MB, over
HTTP and HTTPS. An upstream that reads slowly (its socket buffers full) still gets every byte, also
when the whole send lasts many times the write timeout: that timeout bounds a wait without
progress, not the send. An upstream that never reads ends in ``httpx.WriteTimeout`` within it; one
that answers early (413) and closes is heard. Several MB of SSE come back intact, and the
connection is reused after large bodies either way.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
import trio

from tests.upstreams.http_upstream import HttpUpstream, Received, client_tls, echo_answer
from upstreams.transport import LeanClient, StreamTransport, _send_fd

K, M = 1024, 1024 * 1024
MAX_BODY = 32 * M  # pipeline/config.py ServerConfig.max_body_bytes
SIZES = [0, 1, K, 16 * K - 1, 16 * K, 16 * K + 1, 64 * K - 1, 64 * K, 64 * K + 1, M - 1, M, M + 1, 8 * M, MAX_BODY]
BLOB = random.Random(13).randbytes(MAX_BODY + 7)  # random, so a lost, doubled or moved piece shows
HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-test", "x-trace": "sweep"}


def body_of(size: int) -> bytes:
    start = size % 7  # not always the same first bytes
    return BLOB[start:start + size]


@asynccontextmanager
async def open_client(via: str, *, tls: bool = False, **timeouts: float) -> AsyncIterator[Callable]:
    """A ``post(url, body) -> httpx.Response`` over a fresh StreamTransport, through ``via``."""
    timeout = httpx.Timeout(10.0, **timeouts)
    transport = StreamTransport(ssl_context=client_tls() if tls else None)
    if via == "lean":
        lean = LeanClient(transport, timeout=timeout)
        try:
            yield lambda url, body: lean.post(url, content=body, headers=HEADERS)
        finally:
            await lean.aclose()
    else:
        async with httpx.AsyncClient(transport=transport, timeout=timeout) as client:
            yield lambda url, body: client.post(url, content=body, headers=HEADERS)


def check_received(received: Received, answer: httpx.Response, body: bytes, port: int, path: str) -> None:
    """What the server saw is the request sent, byte for byte, and its answer says so."""
    assert answer.status_code == 200
    assert received.length == len(body)
    assert received.sha256 == hashlib.sha256(body).hexdigest()
    echo = answer.json()
    assert (echo["length"], echo["sha256"]) == (received.length, received.sha256)
    assert echo["head"] == received.head.decode("latin-1")
    assert received.head.split(b"\r\n")[0] == f"POST {path} HTTP/1.1".encode()
    assert received.header("content-length") == str(len(body))
    assert received.header("host") == f"127.0.0.1:{port}"
    for name, value in HEADERS.items():
        assert received.header(name) == value


@pytest.fixture(scope="module")
def upstream():
    with HttpUpstream() as server:
        yield server


class TestBodySweep:
    @pytest.mark.parametrize("via", ["lean", "httpx"])
    @pytest.mark.parametrize("size", SIZES)
    async def test_every_size_arrives_byte_for_byte(self, upstream: HttpUpstream, size: int, via: str) -> None:
        body = body_of(size)
        async with open_client(via) as post:
            answer = await post(f"{upstream.url}/v1/chat/completions?size={size}", body)
        check_received(upstream.received[-1], answer, body, upstream.port, f"/v1/chat/completions?size={size}")

    @pytest.mark.parametrize("size", [K, 64 * K + 1, M + 1, MAX_BODY])
    async def test_https(self, size: int) -> None:
        """Over TLS (DeepSeek's path) the body goes through trio's SSLStream in pieces."""
        body = body_of(size)
        with HttpUpstream(tls=True) as server:
            async with open_client("lean", tls=True) as post:
                answer = await post(f"{server.url}/v1/chat/completions", body)
        check_received(server.received[-1], answer, body, server.port, "/v1/chat/completions")

    async def test_one_connection_carries_large_and_small_bodies_in_turn(self) -> None:
        """After a 32 MB body the connection goes back to the pool and serves the next requests."""
        sizes = [MAX_BODY, K, 64 * K + 1, 8 * M, 0, M]
        with HttpUpstream() as server:
            async with open_client("lean") as post:
                for i, size in enumerate(sizes):
                    answer = await post(f"{server.url}/r{i}", body_of(size))
                    check_received(server.received[-1], answer, body_of(size), server.port, f"/r{i}")
        assert server.connections == 1
        assert [r.length for r in server.received] == sizes


SLOW = {"rcvbuf": 4096, "piece": 4096, "pause_s": 0.001}  # ≥ 1 ms per 4 KB: at most ~4 MB/s


class TestSlowUpstream:
    @pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
    async def test_slow_reader_gets_the_whole_body_though_the_send_outlasts_the_write_timeout(self, tls: bool) -> None:
        """3 MB at ≤ 4 MB/s takes ≥ 0.77 s, over three times the 0.25 s write timeout; every wait
        for room in the buffer is short, so the body arrives whole."""
        body, write_s = body_of(3 * M + 3), 0.25
        with HttpUpstream(tls=tls, **SLOW) as server:
            async with open_client("lean", tls=tls, write=write_s) as post:
                start = time.perf_counter()
                answer = await post(f"{server.url}/slow", body)
                elapsed = time.perf_counter() - start
        check_received(server.received[-1], answer, body, server.port, "/slow")
        assert server.received[-1].read_s > 3 * write_s and elapsed > 3 * write_s

    @pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
    async def test_upstream_that_never_reads_ends_in_a_write_timeout(self, tls: bool) -> None:
        """32 MB is more than any socket buffers hold: the send stops, and the write timeout ends it."""
        write_s = 0.3
        with HttpUpstream(tls=tls, read_body=False, rcvbuf=4096) as server:
            async with open_client("lean", tls=tls, write=write_s, read=5.0) as post:
                start = time.perf_counter()
                with pytest.raises(httpx.WriteTimeout):
                    await post(f"{server.url}/stuck", body_of(MAX_BODY))
                elapsed = time.perf_counter() - start
        assert write_s <= elapsed < write_s + 2.0
        assert len(server.received) == 1 and server.received[0].length == 0

    async def test_early_answer_of_an_upstream_that_stops_reading_is_returned(self) -> None:
        """An upstream that answers 413 after the head and closes: the caller gets that 413, not a
        bare write error (the bytes it sent before closing are read after the reset)."""

        def too_large(received: Received) -> bytes:
            text = b'{"error":{"message":"request too large","type":"invalid_request_error"}}'
            return b"HTTP/1.1 413 Payload Too Large\r\nconnection: close\r\ncontent-length: %d\r\n\r\n" % len(text) + text

        with HttpUpstream(read_body=False, answer_unread=True, answer=too_large) as server:
            async with open_client("lean", write=5.0) as post:
                answer = await post(f"{server.url}/big", body_of(MAX_BODY))
        assert answer.status_code == 413
        assert answer.json()["error"]["message"] == "request too large"


def chunked(payload: bytes, rng: random.Random) -> bytes:
    """``payload`` as chunked transfer coding, chunks of 1 B to 64 KB."""
    out, pos = [], 0
    while pos < len(payload):
        size = rng.choice([1, 7, 100, 4096, 16 * K, 64 * K - 1, 64 * K])
        piece = payload[pos:pos + size]
        out.append(b"%x\r\n" % len(piece) + piece + b"\r\n")
        pos += size
    return b"".join(out) + b"0\r\n\r\n"


def sse_payload(megabytes: int) -> bytes:
    """Chat chunks of 1 to 600 characters (non-ASCII, quotes, backslashes, newlines among them)."""
    rng = random.Random(megabytes)
    alphabet = "abcdefgh é\"\\\n✓"
    text = "".join(rng.choices(alphabet, k=4096))
    events, size = [], 0
    while size < megabytes * M:
        start = rng.randrange(0, 3000)
        piece = text[start:start + rng.randrange(1, 600)]
        event = b"data: " + json.dumps({"choices": [{"delta": {"content": piece}}]}).encode() + b"\n\n"
        events.append(event)
        size += len(event)
    return b"".join(events)


class TestLargeResponse:
    @pytest.mark.parametrize("framing", ["chunked", "length"])
    async def test_megabytes_of_sse_come_back_intact_and_the_connection_is_reused(self, framing: str) -> None:
        payload = sse_payload(6)
        wire = chunked(payload, random.Random(6)) if framing == "chunked" else payload

        def stream_answer(received: Received) -> bytes:
            if received.length:  # the follow-up request gets the echo
                return echo_answer(received)
            framing_header = (b"transfer-encoding: chunked" if framing == "chunked"
                              else b"content-length: %d" % len(payload))
            return b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n" + framing_header + b"\r\n\r\n" + wire

        with HttpUpstream(answer=stream_answer) as server:
            lean = LeanClient(StreamTransport(), timeout=httpx.Timeout(10.0))
            pieces: list[bytes] = []
            async with lean.stream("POST", f"{server.url}/v1/chat/completions", content=b"") as resp:
                assert resp.status_code == 200
                async for piece in resp.aiter_raw():
                    pieces.append(piece)
            got = b"".join(pieces)
            assert len(got) == len(payload) and got == payload
            assert len(pieces) < len(payload) // 4096  # read in bulk, not one piece per chunk
            body = body_of(64 * K + 1)
            answer = await lean.post(f"{server.url}/next", content=body, headers=HEADERS)
            check_received(server.received[-1], answer, body, server.port, "/next")
            await lean.aclose()
        assert server.connections == 1



async def test_send_fd_skips_empty_buffers() -> None:
    """Empty buffers (an empty body, an empty TLS record) are passed over, not written forever."""
    left, right = trio.socket.socketpair()
    with left, right:
        await _send_fd(left.fileno(), [b"", b"head", b"", memoryview(b"body"), b""], 1.0)
        assert await right.recv(100) == b"headbody"
