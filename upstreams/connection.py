"""An upstream HTTP/1.1 connection as ``StreamTransport`` pools it, and the ``Pool`` seam a
response body reads through.

The low-level pieces the transport (``upstreams/transport.py``) and the response body
(``upstreams/response_body.py``) share live here, so that each imports this module and neither
imports the other: the transport builds bodies, a body hands its connection back to the
``Pool`` it came from.
"""

from __future__ import annotations

import select
from typing import Any, Protocol

import trio

READ_SIZE = 64 * 1024


class Conn:
    """One pooled connection: its stream, its origin key, and what was read past a response."""

    __slots__ = ("buf", "fd", "key", "quick", "stream")

    def __init__(self, stream: trio.abc.Stream, key: tuple[str, str, int]) -> None:
        self.stream = stream
        self.key = key
        self.buf = b""  # bytes read past what was consumed
        sock = getattr(stream, "socket", None)  # a plain SocketStream; TLS streams are read through trio
        self.fd = sock.fileno() if sock is not None else -1
        self.quick = 0  # reads in a row that found data waiting

    def stale(self) -> bool:
        """True when the peer closed (or sent something) while the connection was idle."""
        sock = socket_of(self.stream)
        if sock is None:
            return False
        try:
            readable, _, _ = select.select([sock.fileno()], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)


class Pool(Protocol):
    """What a response body needs from the transport that lent it a connection."""

    async def recv(self, conn: Conn, read_s: float | None) -> bytes:
        """One read of up to ``READ_SIZE`` bytes (``b""`` at EOF), within ``read_s`` if given."""

    def release(self, conn: Conn) -> None:
        """Take back a connection whose response was read to its end (kept alive or closed)."""

    async def discard(self, conn: Conn) -> None:
        """Close a connection that cannot be reused."""


def socket_of(stream: Any) -> Any:
    """The trio socket under a SocketStream or an SSLStream over one."""
    return getattr(stream, "socket", None) or getattr(getattr(stream, "transport_stream", None), "socket", None)


__all__ = ["READ_SIZE", "Conn", "Pool", "socket_of"]
