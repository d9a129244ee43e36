"""The Redis / Valkey store, for several replicas: a small RESP2 client on trio sockets.

Why not a library: redis-py's asyncio client does not run under trio, and its sync client (with
hiredis or not) would need a worker thread per call (``trio.to_thread``), a thread hop on every
read of a stored response; this module speaks the five commands the store needs (GET, SET with
PX / NX, DEL, INCRBY, plus AUTH / SELECT / PING at connect) straight on ``trio.open_tcp_stream``,
so a call is one write and one read on the event loop (README "Store" has the measured cost).

Connections are pooled (``POOL_SIZE`` at most, opened as needed, kept while they work); a call
that is cancelled or fails drops its connection (its reply state is unknown); a pooled connection
found dead (the server restarted) is dropped with every idle one, and the call sent once more
on a new connection. Every call is bounded
by ``timeout_s``. URL: ``redis://[[user]:password@]host[:port][/db]``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

import trio

from pipeline.store.base import StoreError

POOL_SIZE = 16
_READ = 65536


class ReplyError(Exception):
    """An error reply (``-ERR ...``) from the server."""


def encode(args: tuple[bytes, ...]) -> bytes:
    """One command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        out.append(b"$%d\r\n" % len(arg))
        out.append(arg)
        out.append(b"\r\n")
    return b"".join(out)


class Connection:
    """One socket to the server and its read buffer."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self._buf = bytearray()

    async def call(self, *commands: tuple[bytes, ...]) -> list[Any]:
        """Send ``commands`` pipelined (one write); their replies in order (an error reply is a
        ``ReplyError`` in the list, so every reply is read)."""
        await self.stream.send_all(b"".join(encode(c) for c in commands))
        return [await self._reply() for _ in commands]

    async def _fill(self) -> None:
        data = await self.stream.receive_some(_READ)
        if not data:
            raise EOFError("the server closed the connection")
        self._buf += data

    async def _line(self) -> bytes:
        while True:
            end = self._buf.find(b"\r\n")
            if end >= 0:
                line = bytes(self._buf[:end])
                del self._buf[:end + 2]
                return line
            await self._fill()

    async def _exact(self, n: int) -> bytes:
        while len(self._buf) < n + 2:
            await self._fill()
        data = bytes(self._buf[:n])
        del self._buf[:n + 2]
        return data

    async def _reply(self) -> Any:
        line = await self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            return ReplyError(rest.decode("utf-8", "replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else await self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [await self._reply() for _ in range(n)]
        raise EOFError(f"not a RESP reply: {line[:40]!r}")

    def close(self) -> None:
        self.stream.socket.close()


class RedisStore:
    def __init__(self, url: str, *, prefix: str = "gw:", timeout_s: float = 5.0, pool_size: int = POOL_SIZE) -> None:
        parts = urlsplit(url)
        if parts.scheme != "redis" or not parts.hostname:
            raise StoreError(f"store url {url!r}: expected redis://[[user]:password@]host[:port][/db]")
        self._host, self._port = parts.hostname, parts.port or 6379
        self._user = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        db = parts.path.strip("/")
        if db and not db.isdigit():
            raise StoreError(f"store url {url!r}: the path must be a database number, got {db!r}")
        self._db = int(db or 0)
        self.where = f"redis {self._host}:{self._port}/{self._db} (prefix {prefix!r})"
        self._prefix = prefix.encode()
        self._timeout = timeout_s
        self._idle: list[Connection] = []
        self._slots = trio.Semaphore(pool_size)

    async def _connect(self) -> Connection:
        stream = await trio.open_tcp_stream(self._host, self._port)
        conn = Connection(stream)
        try:
            hello: list[tuple[bytes, ...]] = []
            if self._password is not None:
                auth = (self._user.encode(),) if self._user else ()
                hello.append((b"AUTH", *auth, self._password.encode()))
            if self._db:
                hello.append((b"SELECT", str(self._db).encode()))
            hello.append((b"PING",))
            for reply in await conn.call(*hello):
                if isinstance(reply, ReplyError):
                    raise StoreError(f"store {self.where}: {reply}")
        except BaseException:
            conn.close()
            raise
        return conn

    async def call(self, *commands: tuple[bytes, ...]) -> list[Any]:
        """The replies to ``commands`` (pipelined on one connection).

        Raises:
            StoreError: the server is unreachable, too slow, or answered with an error.
        """
        async with self._slots:
            for retry in (False, True):
                reused = bool(self._idle)
                conn: Connection | None = None
                done = False
                try:
                    with trio.fail_after(self._timeout):
                        conn = self._idle.pop() if reused else await self._connect()
                        replies = await conn.call(*commands)
                    done = True
                except (OSError, EOFError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                    if reused and not retry:
                        # A pooled connection the server dropped (it restarted): the others are
                        # as stale; once more on a new one.
                        idle, self._idle = self._idle, []
                        for stale in idle:
                            stale.close()
                        continue
                    raise StoreError(f"store {self.where}: {type(exc).__name__}: {exc}") from None
                except trio.TooSlowError:
                    raise StoreError(f"store {self.where}: no answer in {self._timeout:g}s") from None
                finally:
                    if conn is not None:
                        if done:
                            self._idle.append(conn)
                        else:
                            conn.close()
                for reply in replies:
                    if isinstance(reply, ReplyError):
                        raise StoreError(f"store {self.where}: {reply}")
                return replies
        raise AssertionError("unreachable")

    def _key(self, key: str) -> bytes:
        return self._prefix + key.encode()

    async def open(self) -> None:
        await self.call((b"PING",))

    async def get(self, key: str) -> bytes | None:
        (value,) = await self.call((b"GET", self._key(key)))
        return value

    async def put(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        ttl = () if ttl_s is None else (b"PX", b"%d" % max(1, round(ttl_s * 1000)))
        await self.call((b"SET", self._key(key), value, *ttl))

    async def delete(self, key: str) -> bool:
        (n,) = await self.call((b"DEL", self._key(key)))
        return bool(n)

    async def incr(self, key: str, by: int = 1, ttl_s: float | None = None) -> int:
        k, n = self._key(key), b"%d" % by
        if ttl_s is None:
            (total,) = await self.call((b"INCRBY", k, n))
        else:  # created with its TTL if absent (NX), then counted: one round trip
            _, total = await self.call((b"SET", k, b"0", b"PX", b"%d" % max(1, round(ttl_s * 1000)), b"NX"),
                                       (b"INCRBY", k, n))
        return int(total)

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
        await trio.lowlevel.checkpoint()


__all__ = ["POOL_SIZE", "Connection", "RedisStore", "ReplyError", "encode"]
