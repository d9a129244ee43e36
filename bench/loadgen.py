"""A small, cheap HTTP/1.1 load generator for streamed responses (asyncio protocols, keep-alive).

Each connection sends one pre-encoded request at a time and reads the response without decoding
it: the end of a chunked body is found on the bytes, a marker (the first content delta) is looked
for to time the first token. Full bodies are kept only when asked, for validation.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from bench.net import nodelay

_END = b"\r\n0\r\n\r\n"


def http_request(host: str, port: int, path: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"host: {host}:{port}", "content-type: application/json",
             f"content-length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class Reply:
    status: int = 0
    started: float = 0.0
    first: float | None = None  # when the marker arrived
    ended: float = 0.0
    body: bytes = b""  # raw (still chunk-framed) body, only when kept
    close: bool = False


class Window:
    """A measuring window (perf_counter seconds) and the content deltas that arrived inside it,
    counted on the bytes by a marker that occurs once per delta."""

    __slots__ = ("deltas", "marker", "start", "stop")

    def __init__(self, start: float, stop: float, marker: bytes) -> None:
        self.start, self.stop, self.marker = start, stop, marker
        self.deltas = 0


class _Client(asyncio.Protocol):
    def __init__(self, window: Window | None = None) -> None:
        self.window = window
        self.transport: asyncio.Transport | None = None
        self.lost = asyncio.get_running_loop().create_future()
        self._reset(None, b"", False)

    def _reset(self, fut: asyncio.Future[Reply] | None, marker: bytes, keep: bool) -> None:
        self.fut = fut
        self.marker = marker
        self.keep = keep
        self.head = b""
        self.in_body = False
        self.chunked = False
        self.remaining = 0
        self.tail = b""
        self.parts: list[bytes] = []
        self.reply = Reply()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = nodelay(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        if self.fut is not None and not self.fut.done():
            self.fut.set_exception(ConnectionError("connection closed mid-response"))

    def send(self, data: bytes, marker: bytes = b"", keep: bool = False) -> asyncio.Future[Reply]:
        fut: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._reset(fut, marker, keep)
        self.reply.started = time.perf_counter()
        assert self.transport is not None
        self.transport.write(data)
        return fut

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        if self.fut is None:
            return
        if not self.in_body:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end == -1:
                return
            head, data = self.head[:end + 4], self.head[end + 4:]
            self.head = b""
            self._parse_head(head)
            self.in_body = True
            self.tail = head[-2:]
        if self.marker and self.reply.first is None and self.marker in self.tail + data:
            self.reply.first = now
        window = self.window
        if window is not None and window.start <= now < window.stop:
            window.deltas += data.count(window.marker)
        if self.keep:
            self.parts.append(data)
        if self.chunked:
            window = self.tail + data
            done = window.endswith(_END)
            self.tail = window[-16:]
        else:
            self.remaining -= len(data)
            done = self.remaining <= 0
        if done:
            self.reply.ended = now
            self.reply.body = b"".join(self.parts)
            fut, self.fut = self.fut, None
            if not fut.done():
                fut.set_result(self.reply)

    def _parse_head(self, head: bytes) -> None:
        self.reply.status = int(head[9:12])
        lower = head.lower()
        self.chunked = b"transfer-encoding: chunked" in lower
        self.reply.close = b"connection: close" in lower
        at = lower.find(b"content-length:")
        if at != -1:
            self.remaining = int(lower[at + 15:lower.find(b"\r\n", at)])


def dechunk(raw: bytes) -> bytes:
    """The payload of a chunk-framed body."""
    out: list[bytes] = []
    pos = 0
    while pos < len(raw):
        eol = raw.find(b"\r\n", pos)
        size = int(raw[pos:eol].split(b";")[0], 16)
        if size == 0:
            break
        out.append(raw[eol + 2:eol + 2 + size])
        pos = eol + 2 + size + 2
    return b"".join(out)


class Connection:
    """One keep-alive connection; reconnects when the server closes it."""

    def __init__(self, host: str, port: int, window: Window | None = None) -> None:
        self.host, self.port = host, port
        self.window = window
        self.proto: _Client | None = None

    async def _open(self) -> _Client:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_connection(lambda: _Client(self.window), self.host, self.port)
        return proto

    async def request(self, data: bytes, marker: bytes = b"", keep: bool = False) -> Reply:
        if self.proto is None or self.proto.lost.done():
            self.proto = await self._open()
        reply = await self.proto.send(data, marker, keep)
        if reply.close:
            self.close()
        return reply

    def close(self) -> None:
        if self.proto is not None and self.proto.transport is not None:
            self.proto.transport.close()
        self.proto = None


@contextmanager
def realtime(priority: int = 1) -> Iterator[str]:
    """This process at real-time priority (SCHED_FIFO ``priority``) while inside, if allowed: on
    the core it shares with the fake upstream, a reply must not wait for the upstream's time slice
    to end (that wait, up to ~1 ms, would be counted as the gateway's). With the fake upstream
    itself at FIFO (``bench.sized --rt``) this must be above it, or the upstream's writes of one
    answer run to the end before the load generator reads the first. Yields the policy in force."""
    try:
        before = os.sched_getscheduler(0), os.sched_getparam(0)
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (OSError, AttributeError):
        yield "normal"
        return
    try:
        yield "fifo"
    finally:
        os.sched_setscheduler(0, before[0], before[1])


@dataclass
class LoadResult:
    ok: int = 0
    errors: int = 0
    seconds: float = 0.0
    deltas: int = 0  # content deltas that arrived inside the window (when counted)
    samples: list[Reply] = field(default_factory=list)
    error_examples: list[str] = field(default_factory=list)


async def ttft(host: str, port: int, data: bytes, marker: bytes, *, n: int, warmup: int, gap_s: float = 0.0
               ) -> list[float]:
    """Sequential requests on one connection, ``gap_s`` apart; seconds from sending to the
    marker, per request."""
    conn = Connection(host, port)
    out: list[float] = []
    try:
        for i in range(warmup + n):
            if gap_s and i:
                await asyncio.sleep(gap_s)
            reply = await conn.request(data, marker)
            if reply.status != 200 or reply.first is None:
                raise RuntimeError(f"ttft request failed: status {reply.status}, marker seen: {reply.first is not None}")
            if i >= warmup:
                out.append(reply.first - reply.started)
    finally:
        conn.close()
    return out


async def load(host: str, port: int, data: bytes, *, concurrency: int, seconds: float, warmup_s: float,
               terminal: bytes, delta: bytes = b"", keep_first: int = 2) -> LoadResult:
    """``concurrency`` connections in closed loop; counts replies that end inside the window, and
    (with a ``delta`` marker) the content deltas that arrive inside it."""
    result = LoadResult()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    start, stop = t0 + warmup_s, t0 + warmup_s + seconds
    p0 = time.perf_counter() - t0  # the same window on perf_counter's clock
    window = Window(p0 + start, p0 + stop, delta) if delta else None

    async def worker(k: int) -> None:
        conn = Connection(host, port, window)
        kept = 0
        try:
            while loop.time() < stop:
                keep = k < keep_first and kept == 0 and loop.time() >= start
                try:
                    reply = await conn.request(data, keep=keep)
                except (ConnectionError, OSError) as exc:
                    conn.close()
                    result.errors += 1
                    if len(result.error_examples) < 3:
                        result.error_examples.append(repr(exc))
                    await asyncio.sleep(0.01)
                    continue
                now = loop.time()
                if not start <= now < stop:
                    continue
                if keep:
                    kept += 1
                    result.samples.append(reply)
                if reply.status == 200 and (not keep or terminal in dechunk(reply.body)):
                    result.ok += 1
                else:
                    result.errors += 1
                    if len(result.error_examples) < 3:
                        result.error_examples.append(f"status {reply.status}")
        finally:
            conn.close()

    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    result.seconds = seconds
    result.deltas = window.deltas if window is not None else 0
    return result


class HoldTimeout(Exception):
    """A server did not open every stream in time (e.g. its upstream connection pool is smaller)."""


class Held:
    """``n`` streams opened and left open until ``close()``."""

    def __init__(self) -> None:
        self.conns: list[Connection] = []
        self.pending: list[asyncio.Future[Reply]] = []

    async def open(self, host: str, port: int, data: bytes, marker: bytes, n: int, *, timeout_s: float = 60) -> float:
        """Open the streams; returns the seconds until every one has its first delta."""
        t0 = time.perf_counter()
        sem = asyncio.Semaphore(64)  # open at a steady pace rather than 1,000 SYNs at once

        async def one() -> None:
            async with sem:
                conn = Connection(host, port)
                conn.proto = await conn._open()
                self.conns.append(conn)
                fut = conn.proto.send(data, marker)
                self.pending.append(fut)
            while conn.proto is not None and conn.proto.reply.first is None:
                if fut.done():
                    raise RuntimeError(f"held stream ended early: status {fut.result().status}")
                await asyncio.sleep(0.02)

        try:
            await asyncio.wait_for(asyncio.gather(*(one() for _ in range(n))), timeout_s)
        except asyncio.TimeoutError:
            opened = sum(1 for c in self.conns if c.proto is not None and c.proto.reply.first is not None)
            raise HoldTimeout(f"{opened} of {n} streams had their first delta after {timeout_s:g}s") from None
        return time.perf_counter() - t0

    def close(self) -> None:
        for conn in self.conns:
            conn.close()
        for fut in self.pending:
            if not fut.done():
                fut.cancel()
        self.conns, self.pending = [], []


__all__ = ["Connection", "Held", "HoldTimeout", "LoadResult", "Reply", "Window", "dechunk", "http_request", "load",
           "realtime", "ttft"]
