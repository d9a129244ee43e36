"""``SimulatorTransport``: an httpx transport that serves requests from a ``Simulator`` in-process.

The response body is truly streamed: each piece is yielded when "written", after
``trio.sleep(delay)``, and a drop raises ``httpx.RemoteProtocolError`` as a real cut connection
would. Every response gets a ``ConnectionRecord`` so tests can see when (and whether) the
consumer closed the upstream stream, and whether it had read everything.
"""

from __future__ import annotations

from collections import deque

import httpx
import msgspec
import trio

from upstreams.simulator.engine import SimResponse, Simulator


class ConnectionRecord(msgspec.Struct, kw_only=True):
    """One served response, updated as it is read.

    Attributes:
        request_no: the simulator's chat request count when this was served (0: not chat).
        opened_at / closed_at: ``trio.current_time()`` (the server: ``time.monotonic()``) at
            the response and at its close (``closed_at`` None: never closed, i.e. leaked).
        pieces_sent: pieces handed to the consumer so far.
        complete: every piece was read before the close.
        dropped: the simulated connection drop happened.
        client_closed: the consumer closed before the end (server: the client disconnected).
    """

    method: str
    path: str
    status: int
    request_no: int
    opened_at: float
    closed_at: float | None = None
    pieces_sent: int = 0
    total_pieces: int = 0
    complete: bool = False
    dropped: bool = False
    client_closed: bool = False


class PieceStream(httpx.AsyncByteStream):
    """Yields a ``SimResponse``'s pieces with their delays (an iterator, no async generator)."""

    def __init__(self, response: SimResponse, record: ConnectionRecord) -> None:
        self._pieces = response.chunks
        self._drop_after = response.drop_after
        self._record = record
        self._next = 0
        self._closed = False

    def __aiter__(self) -> PieceStream:
        return self

    async def __anext__(self) -> bytes:
        record = self._record
        if self._closed:
            raise StopAsyncIteration
        if self._next == self._drop_after:
            record.dropped = True
            raise httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body "
                "(simulated drop)")
        if self._next >= len(self._pieces):
            record.complete = True
            raise StopAsyncIteration
        delay, data = self._pieces[self._next]
        if delay > 0:
            await trio.sleep(delay)
        self._next += 1
        record.pieces_sent = self._next
        return data

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        record = self._record
        record.closed_at = trio.current_time()
        record.complete = self._next >= len(self._pieces) and not record.dropped
        record.client_closed = not record.complete and not record.dropped


class SimulatorTransport(httpx.AsyncBaseTransport):
    """Serve httpx requests from ``simulator``; use it as ``AsyncClient(transport=...)``.

    Attributes:
        simulator: the ``Simulator`` answering.
        connections: the last ``history`` ``ConnectionRecord``s, oldest first.
    """

    def __init__(self, simulator: Simulator, *, history: int | None = None) -> None:
        self.simulator = simulator
        self.connections: deque[ConnectionRecord] = deque(
            maxlen=history or simulator.config.history)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in request.headers.raw}
        before = self.simulator.chat_requests
        response = self.simulator.respond(request.method, request.url.path, headers, body)
        after = self.simulator.chat_requests
        record = ConnectionRecord(
            method=request.method, path=request.url.path, status=response.status,
            request_no=after if after != before else 0, opened_at=trio.current_time(),
            total_pieces=len(response.chunks))
        self.connections.append(record)
        return httpx.Response(status_code=response.status, headers=response.headers,
                              stream=PieceStream(response, record))


__all__ = ["ConnectionRecord", "PieceStream", "SimulatorTransport"]
