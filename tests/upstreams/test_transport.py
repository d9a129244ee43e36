"""StreamTransport: HTTP/1.1 framing (chunked in any split, length, close), keep-alive reuse,
stale idle connections, timeouts and errors as httpx's exception types, against a raw trio server."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from functools import partial

import httpx
import pytest
import trio

from upstreams.response_body import ChunkedDecoder
from upstreams.transport import LeanClient, StreamTransport

Handler = Callable[[trio.SocketStream, bytes], Awaitable[None]]


async def read_request(stream: trio.SocketStream) -> bytes:
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = await stream.receive_some(65536)
        if not data:
            return b""
        buf += data
    head, _, body = buf.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += await stream.receive_some(65536)
    return head + b"\r\n\r\n" + body


class Server:
    """Serves each connection with ``handler`` (request after request); counts connections."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.port = 0

    async def serve(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        try:
            while True:
                request = await read_request(stream)
                if not request:
                    return
                self.requests.append(request)
                await self.handler(stream, request)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass


async def start(nursery: trio.Nursery, handler: Handler) -> Server:
    server = Server(handler)
    listeners = await nursery.start(partial(trio.serve_tcp, server.serve, 0, host="127.0.0.1"))
    server.port = listeners[0].socket.getsockname()[1]
    return server


SSE = b"".join(b'data: {"n":%d}\n\n' % i for i in range(40))
CHUNKED = b"".join(b"%x\r\n" % len(f) + f + b"\r\n" for f in [SSE[i:i + 37] for i in range(0, len(SSE), 37)]) + b"0\r\n\r\n"
HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


async def chunked_answer(stream: trio.SocketStream, request: bytes) -> None:
    await stream.send_all(HEAD + CHUNKED)


async def fetch(client: httpx.AsyncClient, port: int, path: str = "/v1/chat/completions") -> tuple[int, bytes, int]:
    pieces = 0
    body = b""
    async with client.stream("POST", f"http://127.0.0.1:{port}{path}", content=b'{"x":1}') as resp:
        async for piece in resp.aiter_raw():
            pieces += 1
            body += piece
    return resp.status_code, body, pieces


def client(**kw: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=StreamTransport(**kw), timeout=httpx.Timeout(5.0))  # type: ignore[arg-type]


class TestChunkedDecoder:
    def test_whole_and_byte_by_byte(self) -> None:
        """The payload comes out the same whole and one byte at a time; ``done`` at the last chunk."""
        whole = ChunkedDecoder()
        assert whole.feed(CHUNKED) == SSE and whole.done
        slow = ChunkedDecoder()
        out = b"".join(slow.feed(CHUNKED[i:i + 1]) for i in range(len(CHUNKED)))
        assert out == SSE and slow.done

    @pytest.mark.parametrize("seed", range(20))
    def test_random_splits_with_extensions_and_trailers(self, seed: int) -> None:
        """Chunk extensions and trailers are skipped; bytes after the body stay in ``buf``."""
        raw = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: 1\r\n\r\nNEXT"
        rng = random.Random(seed)
        cuts = sorted(rng.sample(range(1, len(raw)), 6))
        dec = ChunkedDecoder()
        out = b"".join(dec.feed(raw[a:b]) for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True))
        assert out == b"hello world" and dec.done and dec.buf == b"NEXT"

    def test_bad_size_is_a_protocol_error(self) -> None:
        """A chunk size that is not hex raises httpx.RemoteProtocolError."""
        with pytest.raises(httpx.RemoteProtocolError):
            ChunkedDecoder().feed(b"zz\r\nhello\r\n")


class TestTransport:
    async def test_chunked_body_comes_in_few_pieces_and_the_connection_is_reused(self, nursery) -> None:
        """A body sent in one write is one piece (not one per HTTP chunk); keep-alive reuses it."""
        server = await start(nursery, chunked_answer)
        async with client() as c:
            for _ in range(3):
                status, body, pieces = await fetch(c, server.port)
                assert status == 200 and body == SSE and pieces <= 2
        assert server.connections == 1 and len(server.requests) == 3
        assert server.requests[0].startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
        assert server.requests[0].endswith(b'\r\n\r\n{"x":1}')

    async def test_one_write_per_chunk_still_decodes(self, nursery) -> None:
        """An upstream that writes every chunk (and every half chunk) separately."""

        async def trickle(stream: trio.SocketStream, request: bytes) -> None:
            await stream.send_all(HEAD)
            for i in range(0, len(CHUNKED), 11):
                await stream.send_all(CHUNKED[i:i + 11])
                await trio.sleep(0.001)

        server = await start(nursery, trickle)
        async with client() as c:
            status, body, _ = await fetch(c, server.port)
        assert status == 200 and body == SSE

    async def test_content_length_and_close_delimited_bodies(self, nursery) -> None:
        """An error body with Content-Length is read whole; a body without length ends at close."""

        async def answer(stream: trio.SocketStream, request: bytes) -> None:
            if b"/length" in request:
                await stream.send_all(b"HTTP/1.1 429 Too Many\r\ncontent-length: 11\r\nretry-after: 3\r\n\r\nslow down!!")
            else:
                await stream.send_all(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\n\r\nuntil close")
                await stream.aclose()

        server = await start(nursery, answer)
        async with client() as c:
            resp = await c.post(f"http://127.0.0.1:{server.port}/length", content=b"{}")
            assert resp.status_code == 429 and resp.content == b"slow down!!" and resp.headers["retry-after"] == "3"
            status, body, _ = await fetch(c, server.port, "/close")
            assert status == 200 and body == b"until close"

    async def test_stale_idle_connection_is_not_reused(self, nursery) -> None:
        """A keep-alive connection the server closed while idle is replaced by a new one."""

        async def once(stream: trio.SocketStream, request: bytes) -> None:
            await stream.send_all(HEAD + CHUNKED)
            await stream.aclose()

        server = await start(nursery, once)
        async with client() as c:
            for _ in range(2):
                status, body, _ = await fetch(c, server.port)
                assert status == 200 and body == SSE
                await trio.sleep(0.05)
        assert server.connections == 2

    async def test_truncated_body_is_a_transport_error(self, nursery) -> None:
        """The upstream going away mid-body raises httpx.RemoteProtocolError (a TransportError)."""

        async def cut(stream: trio.SocketStream, request: bytes) -> None:
            await stream.send_all(HEAD + CHUNKED[:100])
            await stream.aclose()

        server = await start(nursery, cut)
        async with client() as c:
            with pytest.raises(httpx.RemoteProtocolError):
                await fetch(c, server.port)

    async def test_read_timeout(self, nursery) -> None:
        """No byte within the read timeout raises httpx.ReadTimeout."""

        async def stall(stream: trio.SocketStream, request: bytes) -> None:
            await stream.send_all(HEAD)
            await trio.sleep(10)

        server = await start(nursery, stall)
        async with httpx.AsyncClient(transport=StreamTransport(), timeout=httpx.Timeout(5.0, read=0.1)) as c:
            with pytest.raises(httpx.ReadTimeout):
                await fetch(c, server.port)

    async def test_connect_error(self) -> None:
        """Nothing listening raises httpx.ConnectError."""
        with trio.socket.socket() as s:
            await s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        async with client() as c:
            with pytest.raises(httpx.ConnectError):
                await fetch(c, port)

    async def test_pool_limit_waits_then_times_out(self, nursery) -> None:
        """With every connection busy, the next request waits for one, up to the pool timeout."""

        async def stall(stream: trio.SocketStream, request: bytes) -> None:
            await stream.send_all(HEAD)
            await trio.sleep(10)

        server = await start(nursery, stall)
        async with httpx.AsyncClient(transport=StreamTransport(max_connections=1),
                                     timeout=httpx.Timeout(5.0, pool=0.1)) as c:
            async with c.stream("POST", f"http://127.0.0.1:{server.port}/", content=b"{}"):
                with pytest.raises(httpx.PoolTimeout):
                    await fetch(c, server.port)


class TestLeanClient:
    async def test_stream_and_post_send_the_headers_given_and_identity_encoding(self, nursery) -> None:
        """The request carries the caller's headers plus host, length and identity encoding."""
        server = await start(nursery, chunked_answer)
        lean = LeanClient(StreamTransport(), timeout=httpx.Timeout(5.0))
        url = f"http://127.0.0.1:{server.port}/v1/chat/completions"
        async with lean.stream("POST", url, content=b'{"x":1}', headers={"authorization": "Bearer k"}) as resp:
            assert resp.status_code == 200 and resp.request.url == httpx.URL(url)
            body = b"".join([piece async for piece in resp.aiter_raw()])
        assert body == SSE
        resp = await lean.post(url, content=b"{}")
        assert resp.status_code == 200 and resp.content == SSE
        head = server.requests[0].split(b"\r\n\r\n")[0].lower()
        for line in (b"authorization: bearer k", b"accept-encoding: identity", b"content-length: 7",
                     f"host: 127.0.0.1:{server.port}".encode()):
            assert line in head
        assert server.connections == 1
        await lean.aclose()

    async def test_timeouts_apply(self, nursery) -> None:
        """The client's read timeout reaches the transport."""

        async def stall(stream: trio.SocketStream, request: bytes) -> None:
            await trio.sleep(10)

        server = await start(nursery, stall)
        lean = LeanClient(StreamTransport(), timeout=httpx.Timeout(5.0, read=0.1))
        with pytest.raises(httpx.ReadTimeout):
            async with lean.stream("POST", f"http://127.0.0.1:{server.port}/", content=b"{}"):
                pass
