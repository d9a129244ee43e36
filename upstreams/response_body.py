"""The upstream's response body as ``StreamTransport`` reads it: the bulk chunked-transfer
decoder and the body stream (one yielded piece per socket read).

The body reads through the ``Pool`` that lent it its connection (``upstreams/connection.py``),
so it never imports the transport that builds it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from upstreams.connection import Conn, Pool


class ChunkedDecoder:
    """Incremental chunked-transfer decoder that works on whole reads."""

    __slots__ = ("buf", "done", "left", "state")

    def __init__(self) -> None:
        self.buf = b""
        self.left = 0  # payload bytes left in the current chunk
        self.state = 0  # 0 size line, 1 data, 2 CRLF after data, 3 trailers
        self.done = False

    def feed(self, data: bytes) -> bytes:
        buf = self.buf + data if self.buf else data
        out: list[bytes] = []
        pos, n = 0, len(buf)
        state, left = self.state, self.left
        find = buf.find
        while pos < n:
            if state == 0:  # size line, then (the common case) the whole chunk and its CRLF at once
                eol = find(b"\r\n", pos)
                if eol == -1:
                    if n - pos > 1024:
                        raise httpx.RemoteProtocolError("malformed chunked body: chunk size line too long")
                    break
                try:
                    size = int(buf[pos:eol].split(b";", 1)[0], 16)
                except ValueError:
                    raise httpx.RemoteProtocolError("malformed chunked body: bad chunk size") from None
                pos = eol + 2
                if size == 0:
                    state = 3
                    continue
                end = pos + size
                if end + 2 <= n:
                    if buf[end:end + 2] != b"\r\n":
                        raise httpx.RemoteProtocolError("malformed chunked body: missing CRLF after a chunk")
                    out.append(buf[pos:end])
                    pos = end + 2
                    continue
                state, left = 1, size
            elif state == 1:
                take = min(left, n - pos)
                out.append(buf[pos:pos + take])
                pos += take
                left -= take
                if left == 0:
                    state = 2
            elif state == 2:
                if n - pos < 2:
                    break
                if buf[pos:pos + 2] != b"\r\n":
                    raise httpx.RemoteProtocolError("malformed chunked body: missing CRLF after a chunk")
                pos += 2
                state = 0
            else:  # trailers: lines until an empty one
                eol = find(b"\r\n", pos)
                if eol == -1:
                    break
                done, pos = eol == pos, eol + 2
                if done:
                    self.done = True
                    break
        self.state, self.left = state, left
        self.buf = buf[pos:]
        return out[0] if len(out) == 1 else b"".join(out)


class ResponseBody(httpx.AsyncByteStream):
    """The response body: one yielded piece per socket read; the connection goes back to the pool
    when the body was read to its end and both sides allow keep-alive."""

    def __init__(self, transport: Pool, conn: Conn, *, chunked: bool, length: int | None,
                 reuse: bool, read_s: float | None) -> None:
        self._transport = transport
        self._conn: Conn | None = conn
        self._chunked = ChunkedDecoder() if chunked else None
        self._left = length  # None: until close (when not chunked)
        self._reuse = reuse
        self.read_s = read_s  # None: the caller watches idleness itself (no timer)
        self._complete = length == 0

    def watched(self) -> AsyncIterator[bytes]:
        """The body's pieces for a caller that watches idleness itself (``openai_chat``'s idle
        watch): no read timer per piece, and read directly, one generator less per read than
        httpx's ``aiter_raw``. The response's own ``aclose`` still releases the connection."""
        self.read_s = None
        return self.__aiter__()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn = self._conn
        if conn is None or self._complete:
            return
        pending, conn.buf = conn.buf, b""
        while not self._complete:
            data = pending or await self._transport.recv(conn, self.read_s)
            pending = b""
            if not data:
                if self._chunked is None and self._left is None:
                    self._complete, self._reuse = True, False
                    return
                raise httpx.RemoteProtocolError("peer closed connection without sending the complete body")
            piece = self._piece(data, conn)
            if piece:
                yield piece

    def _piece(self, data: bytes, conn: Conn) -> bytes:
        chunked = self._chunked
        if chunked is not None:
            piece = chunked.feed(data)
            if chunked.done:
                self._complete = True
                conn.buf = chunked.buf
            return piece
        if self._left is None:
            return data
        if len(data) >= self._left:
            piece, conn.buf = data[:self._left], data[self._left:]
            self._left, self._complete = 0, True
            return piece
        self._left -= len(data)
        return data

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._complete and self._reuse and not conn.buf:
            self._transport.release(conn)
        else:
            await self._transport.discard(conn)


__all__ = ["ChunkedDecoder", "ResponseBody"]
